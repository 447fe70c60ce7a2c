# SageMaker bring-your-own-container image for XGBoost: `train` (or no argument) trains, `serve`
# serves. Build it with ./build_and_push.sh (docs/docker.md).
#
# Python packages come only from the wheel folder `wheels/` (scripts/wheels.sh fills it on the
# host from requirements.lock): nothing is fetched from PyPI inside the build. BASE_IMAGE is the
# public slim Python image by default, or any Debian 12 image (scripts/base-image.sh makes one
# with debootstrap for offline builds), in which case Python 3.11 comes from Debian's packages.
ARG BASE_IMAGE=python:3.11.10-slim-bookworm@sha256:5148c0e4bbb64271bca1d3322360ebf4bfb7564507ae32dd639322e4952a6b16

# What both stages share: a Python 3.11 interpreter at the same path. Debian packages are not
# pinned (DL3008): their versions follow the base, which is pinned by digest, plus security fixes.
FROM ${BASE_IMAGE} AS runtime-base
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# hadolint ignore=DL3008
RUN if ! command -v python3 >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 \
        && apt-get clean \
        && rm -rf /var/lib/apt/lists/*; \
    fi

# The builder: a C compiler (sagemaker-training builds a C extension) and the venv /opt/venv.
FROM runtime-base AS builder
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then \
        apt-get install -y --no-install-recommends python3-venv; \
    fi \
    && if [ ! -f "$(python3 -c 'import sysconfig; print(sysconfig.get_path("include"))')/Python.h" ]; then \
        apt-get install -y --no-install-recommends python3-dev; \
    fi \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.lock requirements-build.lock /tmp/requirements/
COPY wheels/ /tmp/wheels/
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels \
        -r /tmp/requirements/requirements-build.lock \
    && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels \
        --no-build-isolation -r /tmp/requirements/requirements.lock \
    && /opt/venv/bin/pip uninstall --yes -r /tmp/requirements/requirements-build.lock \
    && /opt/venv/bin/pip check \
    && site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))') \
    && find "$site" -mindepth 2 -depth -type d -name tests -exec rm -rf {} + \
    && rm -rf "$site"/pyarrow/include "$site"/pyarrow/src

# The image: the interpreter, the venv and the program; no compiler, wheels or package caches.
FROM runtime-base
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true \
      com.amazonaws.sagemaker.capabilities.multi-models=true
# nginx: the buffering front that `serve` starts before gunicorn (container/serving/front.py);
# serve writes its own configuration, so Debian's default site is removed.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/default
ENV PATH=/opt/venv/bin:$PATH
COPY --from=builder /opt/venv /opt/venv
COPY docker/entrypoint.sh /usr/local/bin/entrypoint.sh
COPY train serve /opt/program/
COPY container/ /opt/program/container/
COPY sagemaker_xgboost_container/ /opt/program/sagemaker_xgboost_container/
COPY sagemaker_containers/ /opt/program/sagemaker_containers/
# Script-mode programs run from /opt/ml/code: a .pth file puts /opt/program on their path too,
# for the framework container's names (sagemaker_xgboost_container) and the code they wrap.
RUN site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))') \
    && echo /opt/program > "$site/opt-program.pth"
WORKDIR /opt/program
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
CMD ["train"]
