from django.urls import path

from . import views

urlpatterns = [
    path("oidc/authenticate/", views.sso_start, name="oidc_authentication_init"),
    path("oidc/callback/", views.sso_callback, name="oidc_authentication_callback"),
    path("sso/refused/", views.sso_refused, name="sso-refused"),
]
