from django.urls import path

from .views import prometheus_metrics

urlpatterns = [
    path("metrics", prometheus_metrics, name="prometheus-metrics"),
]
