# A small image running the gateway as a non-root user:
#   docker build -t switchyard .
#   docker run -p 8000:8000 -v $PWD/switchyard.toml:/etc/switchyard/switchyard.toml switchyard
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY switchyard switchyard
COPY schema schema
COPY resolvers resolvers
COPY upstreams upstreams
COPY services services
COPY protos protos
RUN python -m venv /opt/switchyard \
 && /opt/switchyard/bin/pip install --no-cache-dir . \
 && /opt/switchyard/bin/switchyard ide fetch --dest /opt/switchyard/graphiql

FROM python:3.11-slim
COPY --from=build /opt/switchyard /opt/switchyard
RUN useradd --system --uid 10001 --no-create-home switchyard \
 && mkdir -p /etc/switchyard \
 && cp "$(/opt/switchyard/bin/python -c 'import switchyard.config as c; print(c.DEMO_CONFIG)')" /etc/switchyard/switchyard.toml
ENV PATH=/opt/switchyard/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SWITCHYARD_SERVER__HOST=0.0.0.0 \
    SWITCHYARD_IDE__ASSETS_DIR=/opt/switchyard/graphiql
USER switchyard
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
CMD ["switchyard", "serve", "--config", "/etc/switchyard/switchyard.toml"]
