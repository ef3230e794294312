"""glacier: map clean-ice and debris-covered glaciers in Landsat 7 imagery."""

from glacier.config import register_resolvers

__version__ = "0.1.0"

register_resolvers()
