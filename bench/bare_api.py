"""The baseline of the API benchmark: bare DRF endpoints on the same table (ModelSerializer,
generic views, token auth, the same pagination), beside the product's URLs."""

from django.urls import include, path
from rest_framework import generics, serializers

from jobs.models import ReportJob
from reportdesk.selectors import member_workspace_ids


class BareJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReportJob
        fields = ["id", "public_id", "workspace", "template", "source_manifest", "topic", "audience", "status", "created_at", "deadline"]
        read_only_fields = ["public_id", "status", "created_at"]


class BareJobs(generics.ListCreateAPIView):
    serializer_class = BareJobSerializer

    def get_queryset(self):
        return ReportJob.objects.filter(workspace_id__in=member_workspace_ids(self.request.user)).order_by("-created_at", "-id")

    def perform_create(self, serializer):
        serializer.save(requested_by=self.request.user)


class BareJob(generics.RetrieveAPIView):
    serializer_class = BareJobSerializer
    lookup_field = "public_id"

    def get_queryset(self):
        return ReportJob.objects.filter(workspace_id__in=member_workspace_ids(self.request.user))


urlpatterns = [
    path("bare/jobs/", BareJobs.as_view()),
    path("bare/jobs/<str:public_id>/", BareJob.as_view()),
    path("", include("reportdesk.urls")),
]
