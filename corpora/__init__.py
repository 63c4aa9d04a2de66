"""Suqiu's corpora: reading appeals, text normalisation, rules and lexicons as data."""
import pandas as _pd

# pandas 3 keeps columns of strings in pyarrow when pyarrow is installed (it is: the digest
# reads CSV with it). Suqiu's columns hold a few thousand distinct texts over a million rows,
# one shared Python object each, hashed once (models.trends._factorize); pyarrow storage would
# copy every row's text out and back. Python storage keeps the objects.
_pd.set_option("mode.string_storage", "python")
