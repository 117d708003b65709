from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ConsoleConfig(AppConfig):
    """The admin as people meet it: the site, its index per role, the workers page."""

    name = "console"
    verbose_name = "Operations"
    default = True


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with reportdesk's site (console.site.ConsoleSite) as `admin.site`."""

    default_site = "console.site.ConsoleSite"
    # Listed by its dotted path in INSTALLED_APPS; "console" alone means ConsoleConfig.
    default = False
