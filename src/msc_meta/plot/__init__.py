"""msc_meta.plot"""
