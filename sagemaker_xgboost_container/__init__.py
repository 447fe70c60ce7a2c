"""The names scripts written for AWS's XGBoost framework container import, for script mode here.

Thin adapters over this image's own code: `data_utils.get_dmatrix` reads a channel with the
training readers, `distributed` joins the hosts with the training collective, `encoder` decodes
request bodies with the serving codecs. docs/script-mode.md lists each name and how it differs.
"""
