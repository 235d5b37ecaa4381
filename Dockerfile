# mes-edge service image: slim Python, non-root, config mounted from outside.
#   docker build -t mes-edge .
#   docker run -v ./plant.yaml:/etc/mes-edge/plant.yaml:ro -v mes-data:/var/lib/mes-edge -p 8000:8000 mes-edge
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 mes \
    && useradd --system --uid 10001 --gid mes --home-dir /var/lib/mes-edge --create-home mes

WORKDIR /opt/mes-edge
COPY pyproject.toml README.md ./
COPY mes_edge ./mes_edge
COPY drivers ./drivers
COPY simulators ./simulators
COPY benchmarks ./benchmarks
COPY config ./config
RUN pip install --no-cache-dir . \
    && mkdir -p /etc/mes-edge \
    && cp config/demo.yaml /etc/mes-edge/plant.yaml

USER 10001:10001
WORKDIR /var/lib/mes-edge
VOLUME ["/var/lib/mes-edge"]
EXPOSE 8000

# The API must listen on all interfaces inside the container.
ENV MES_EDGE_API__HOST=0.0.0.0

HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]

ENTRYPOINT ["mes-edge"]
CMD ["run", "--config", "/etc/mes-edge/plant.yaml"]
