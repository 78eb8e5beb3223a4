# Production image for the API and the worker (the worker also needs bubblewrap).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir .
ENV TILEGRAPH_ENV=production
EXPOSE 8000
CMD ["tilegraph", "serve", "--host", "0.0.0.0", "--port", "8000"]
