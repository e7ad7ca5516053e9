"""msc_meta.data"""
