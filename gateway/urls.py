from django.urls import path

from gateway import views

app_name = "gateway"
urlpatterns = [
    path("health", views.health, name="health"),
    path("stats", views.stats, name="stats"),
    path("metrics", views.metrics, name="metrics"),
    path("protocol/schema.json", views.schema, name="protocol-schema"),
    path("bench/noop", views.bench_noop, name="bench-noop"),
]
