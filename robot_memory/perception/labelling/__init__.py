"""Object categories from pluggable labellers (see ``labelling/base.py``)."""
