# dealstream worker and connectors. Build: docker build -t dealstream .
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY dealstream ./dealstream
COPY broker ./broker
COPY connectors ./connectors
COPY models ./models
COPY schemas ./schemas
COPY sinks ./sinks
COPY streams ./streams
COPY deploy/samples ./deploy/samples
RUN pip install . && useradd --create-home --uid 10001 dealstream
USER dealstream
EXPOSE 6066
ENTRYPOINT ["dealstream"]
CMD ["worker"]
