"""msc_meta.report"""
