"""Mode B settings for the real WebOps panel under `cargo xtask panel`: the shipped settings
with no Redis. Channels use the in-memory layer and Celery tasks run eagerly inside the
request (so deploy/delete log rows appear without a worker). Written for this project; it
only imports the panel's own settings module.
"""

from config.settings import *  # noqa: F401,F403  (the panel's settings, as shipped)

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_BROKER_URL = "memory://"
CELERY_RESULT_BACKEND = "cache+memory://"
