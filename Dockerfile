# A small image running the gateway as a non-root user:
#   docker build -t switchyard .
#   docker run -p 8000:8000 switchyard       # deploy/switchyard.toml: no dev key, no demo API keys
#   docker run -p 8000:8000 -v $PWD/my.toml:/etc/switchyard/switchyard.toml switchyard
#   docker run -p 8000:8000 switchyard switchyard demo --host 0.0.0.0   # the demo, its keys included
# Upstream addresses: SWITCHYARD_UPSTREAMS__ACCOUNTS__INSTANCES='["http://10.0.0.5:7001"]' etc.
#
# Only the runtime (the `switchyard` package) is installed; the graph it serves and the demo
# platform are this checkout's folders, copied to /app (on PYTHONPATH).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY switchyard switchyard
RUN python -m venv /opt/switchyard \
 && /opt/switchyard/bin/pip install --no-cache-dir '.[demo]' \
 && /opt/switchyard/bin/switchyard ide fetch --dest /opt/switchyard/graphiql

FROM python:3.11-slim
COPY --from=build /opt/switchyard /opt/switchyard
RUN useradd --system --uid 10001 --no-create-home switchyard
WORKDIR /app
# The graph (schema resolvers upstreams) and, for `switchyard demo`, the demo platform and its config.
COPY schema schema
COPY resolvers resolvers
COPY upstreams upstreams
COPY services services
COPY protos protos
COPY switchyard.toml ./
COPY deploy/switchyard.toml /etc/switchyard/switchyard.toml
# The console script does not put the working directory on sys.path: PYTHONPATH finds the graph.
ENV PATH=/opt/switchyard/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    SWITCHYARD_SERVER__HOST=0.0.0.0 \
    SWITCHYARD_IDE__ASSETS_DIR=/opt/switchyard/graphiql
# /app is read-only to the user: compile once here rather than on every start.
RUN python -m compileall -q /app
USER switchyard
EXPOSE 8000
# The port `switchyard serve` listens on: SWITCHYARD_PORT (--port's default), else
# SWITCHYARD_SERVER__PORT (overrides [server] port), else 8000 as in the default config.
# A mounted config with another port: set SWITCHYARD_SERVER__PORT to it too.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('SWITCHYARD_PORT') or os.environ.get('SWITCHYARD_SERVER__PORT') or '8000'; sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status == 200 else 1)"]
CMD ["switchyard", "serve", "--config", "/etc/switchyard/switchyard.toml"]
