# etcdpy server image: etcd's default ports, data in a volume, runs as a non-root user.
FROM python:3.11-slim

RUN useradd --system --home /var/lib/etcdpy --create-home etcdpy
WORKDIR /src
COPY pyproject.toml README.md ./
COPY etcdpy ./etcdpy
COPY proto ./proto
RUN pip install --no-cache-dir . && rm -rf /src

USER etcdpy
WORKDIR /var/lib/etcdpy
VOLUME ["/var/lib/etcdpy"]
EXPOSE 2379 2380
ENV ETCD_DATA_DIR=/var/lib/etcdpy/default.etcd \
    ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379 \
    ETCD_ADVERTISE_CLIENT_URLS=http://localhost:2379 \
    ETCD_LISTEN_PEER_URLS=http://0.0.0.0:2380
ENTRYPOINT ["etcdpy"]
