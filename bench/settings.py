"""Settings for benchmark servers: the real settings plus a hello-world ceiling route."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
