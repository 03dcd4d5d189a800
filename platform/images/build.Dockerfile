# Build image of mlbp/builder:bookworm. platform/setup makes the base from a debootstrap
# rootfs (with the cnb user, uid 1001) and builds this with the host CA bundle as context.
ARG base
FROM ${base}

COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt

# pack requires CNB_USER_ID/CNB_GROUP_ID; the lifecycle runs buildpacks as that user.
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    CNB_USER_ID=1001 \
    CNB_GROUP_ID=1000
USER 1001:1000

LABEL io.buildpacks.base.distro.name="debian" \
      io.buildpacks.base.distro.version="12" \
      io.buildpacks.base.description="Debian bookworm build image for mlstack/python-ml" \
      io.buildpacks.stack.id="io.buildpacks.stacks.bookworm"
