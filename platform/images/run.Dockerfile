# Run image of mlbp/builder:bookworm. platform/setup makes the base from a debootstrap
# rootfs (with the cnb user, uid 1002) and builds this with the host CA bundle as context.
ARG base
FROM ${base}

COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt

ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8
USER 1002:1000

LABEL io.buildpacks.base.distro.name="debian" \
      io.buildpacks.base.distro.version="12" \
      io.buildpacks.base.description="Debian bookworm run image for mlstack/python-ml" \
      io.buildpacks.stack.id="io.buildpacks.stacks.bookworm" \
      io.buildpacks.rebasable="true"
