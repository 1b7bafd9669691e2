FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install --no-cache-dir .
RUN useradd --system --home /var/lib/intake-gateway gateway \
    && mkdir -p /var/lib/intake-gateway && chown gateway /var/lib/intake-gateway
USER gateway
EXPOSE 8080
CMD ["intake-gateway", "run"]
