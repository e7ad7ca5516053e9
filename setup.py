"""The one compiled piece: report/_interleave.c, which writes the entries of a long ``--json``
study list (json_out._study_chunks). It is optional: where it does not build, json_out
writes the same bytes in Python, more slowly."""
from setuptools import Extension, setup

setup(ext_modules=[Extension("msc_meta.report._interleave", ["src/msc_meta/report/_interleave.c"],
                             optional=True)])
