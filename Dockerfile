# etcdpy server image: etcd's default ports, data in a volume, runs as a non-root user.
# The wheel is built where a C compiler is (the multiplexer's native splice thread,
# etcdpy/transport/_splice.c); the runtime image carries no compiler.
FROM python:3.11-slim AS build
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY etcdpy ./etcdpy
COPY proto ./proto
RUN pip wheel --no-cache-dir --no-deps -w /wheels . \
    && python -c "import zipfile,glob,sys; n=zipfile.ZipFile(glob.glob('/wheels/etcdpy-*.whl')[0]).namelist(); sys.exit(not any('_splice' in x for x in n))"

FROM python:3.11-slim
RUN useradd --system --home /var/lib/etcdpy --create-home etcdpy
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels

USER etcdpy
WORKDIR /var/lib/etcdpy
VOLUME ["/var/lib/etcdpy"]
EXPOSE 2379 2380
ENV ETCD_DATA_DIR=/var/lib/etcdpy/default.etcd \
    ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379 \
    ETCD_ADVERTISE_CLIENT_URLS=http://localhost:2379 \
    ETCD_LISTEN_PEER_URLS=http://0.0.0.0:2380
ENTRYPOINT ["etcdpy"]
