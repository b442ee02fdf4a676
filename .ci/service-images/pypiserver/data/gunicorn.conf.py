"""gunicorn settings for `pypi-server run --server gunicorn`, the image's default command.

gunicorn reads ./gunicorn.conf.py and the working directory is /data: mount another file
there to change them.
"""

errorlog = "-"
preload_app = True
workers = 1
worker_class = "gevent"
