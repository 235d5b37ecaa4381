# mes-edge service image: slim Python, non-root, pinned packages, the plant file mounted from outside.
#   docker build -t mes-edge .
#   docker run -v ./plant.yaml:/etc/mes-edge/plant.yaml:ro -v mes-data:/var/lib/mes-edge -p 8000:8000 mes-edge
# Without a mounted plant file the container refuses to start (one line on stderr, exit 64);
# MES_EDGE_DEMO=1 runs the demo plant instead, on purpose only.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 mes \
    && useradd --system --uid 10001 --gid mes --home-dir /var/lib/mes-edge --create-home mes

WORKDIR /opt/mes-edge
COPY pyproject.toml README.md constraints.txt ./
COPY mes_edge ./mes_edge
COPY drivers ./drivers
COPY simulators ./simulators
COPY benchmarks ./benchmarks
COPY config ./config
# The same pinned versions the test suite ran with (constraints.txt, see .ci/refresh-constraints).
RUN pip install --no-cache-dir -c constraints.txt . \
    && mkdir -p /etc/mes-edge

USER 10001:10001
WORKDIR /var/lib/mes-edge
VOLUME ["/var/lib/mes-edge"]

# The API must listen on all interfaces inside the container. The port comes from the
# environment (it overrides the plant file's api.port), so the health check probes the port the
# service listens on: change it with -e MES_EDGE_API__PORT=... and publish that port.
ENV MES_EDGE_API__HOST=0.0.0.0 \
    MES_EDGE_API__PORT=8000 \
    MES_EDGE_PLANT=/etc/mes-edge/plant.yaml \
    MES_EDGE_DEMO_PLANT=/opt/mes-edge/config/demo.yaml
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('MES_EDGE_API__PORT') or '8000'; sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status == 200 else 1)"]

# `run` (the default) needs the mounted plant file; any other command goes to mes-edge as is.
ENTRYPOINT ["/bin/sh", "-c", "if [ \"$*\" = run ]; then if [ -f \"$MES_EDGE_PLANT\" ]; then set -- run --config \"$MES_EDGE_PLANT\"; elif [ \"${MES_EDGE_DEMO:-}\" = 1 ]; then echo \"mes-edge: MES_EDGE_DEMO=1: running the DEMO plant $MES_EDGE_DEMO_PLANT, not a real line\" >&2; set -- run --config \"$MES_EDGE_DEMO_PLANT\"; else echo \"mes-edge: no plant file at $MES_EDGE_PLANT: mount yours there (-v ./plant.yaml:$MES_EDGE_PLANT:ro), or set MES_EDGE_DEMO=1 to run the demo plant\" >&2; exit 64; fi; fi; exec mes-edge \"$@\"", "mes-edge"]
CMD ["run"]
