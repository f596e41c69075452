# mjgate: one uvicorn worker per container; scale with replicas (docs/observability.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    MJGATE_HOST=0.0.0.0 MJGATE_PORT=8080 MJGATE_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY routing ./routing
COPY gateway ./gateway
COPY emulator ./emulator
COPY bench ./bench
RUN pip install --no-cache-dir . \
    && useradd --uid 10001 --create-home mjgate \
    && mkdir -p /data && chown mjgate /data

USER 10001
# 8080: the client API (MJGATE_PORT); 8181: the admin API when MJGATE_ADMIN_PORT=8181 (the
# compose file and the Kubernetes manifests set it), else /admin/v1 is on 8080.
EXPOSE 8080 8181
HEALTHCHECK --interval=10s --timeout=2s CMD python -c "import urllib.request,sys; \
sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz').status == 200 else 1)"
CMD ["mjgate", "serve"]
