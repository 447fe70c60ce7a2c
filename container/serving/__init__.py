"""The inference server: gunicorn + Flask answering /ping, /invocations, /execution-parameters.

`server.py` runs gunicorn, `wsgi.py` loads the model from disk, `app.py` is the HTTP layer, and
`codecs/` turns request bodies into feature matrices and predictions into response bodies.
"""
