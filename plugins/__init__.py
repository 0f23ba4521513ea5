"""The built-in plugins: ordinary plugin modules (`@hookimpl` from `ecgcl.hookspecs`, which third-party plugins
reach as `ecgcl.hookimpl`) registered by the plugin manager."""
