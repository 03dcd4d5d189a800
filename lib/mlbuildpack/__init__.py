"""The Python ML buildpack: detect and build Python ML apps for Cloud Native Buildpacks."""
