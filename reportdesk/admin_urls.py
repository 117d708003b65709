"""The admin's routes alone, under the same prefix as in reportdesk.urls.

A worker builds links to admin pages (the job page in a mail, in a webhook's payload) with
this URLconf: reversing through the whole one would import the REST API's views and schema
into every worker process (about 24 MiB) for the sake of a link. tests/notifications holds
the two equal for every link the notifications build.
"""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
