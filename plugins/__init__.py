"""The built-in plugins: ordinary `@ecgcl.hookimpl` modules registered by the plugin manager."""
