"""The Python ML buildpack: detect and build Python ML apps as a CNB buildpack."""
