# syntax=docker/dockerfile:1
# Three stages: build (compile one self-contained binary), runtime (the binary on a small base, non-root),
# test (the source with Deno, Python and Chromium, for `docker compose run --rm tests`).

FROM denoland/deno:2.9.6 AS build
WORKDIR /src
COPY deno.json deno.lock ./
COPY . .
# Fetch the pinned npm packages exactly as deno.lock records them, then compile.
RUN deno install --frozen \
 && deno task compile \
 && ./dist/autoscaler-central version

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
WORKDIR /app
COPY --from=build /src/dist/autoscaler-central /usr/local/bin/autoscaler-central
USER nonroot:nonroot
ENV API_PORT=8000 ENVIRONMENT=production
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/autoscaler-central", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/autoscaler-central"]
CMD ["serve"]

FROM denoland/deno:2.9.6 AS test
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 chromium fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY deno.json deno.lock ./
COPY . .
RUN deno install --frozen
ENV ENVIRONMENT=test
CMD ["deno", "task", "test"]
