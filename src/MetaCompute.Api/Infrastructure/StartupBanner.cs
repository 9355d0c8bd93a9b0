using MetaCompute.Api.Data;

namespace MetaCompute.Api.Infrastructure;

/// <summary>Tells a developer where the service is and which keys to try it with.</summary>
public static class StartupBanner
{
    public static void Print(WebApplication app)
    {
        var url = app.Urls.FirstOrDefault() ?? "http://localhost:5000";
        var bootstrap = app.Configuration.GetSection("Bootstrap").Get<BootstrapOptions>() ?? new BootstrapOptions();
        Console.WriteLine();
        Console.WriteLine($"MetaCompute is listening on {url}");
        Console.WriteLine($"  API reference: {url}/docs   OpenAPI: {url}/openapi/v1.json   Ready: {url}/health/ready");
        if (!app.Environment.IsDevelopment())
        {
            return;
        }

        if (!string.IsNullOrEmpty(bootstrap.OperatorApiKey))
        {
            Console.WriteLine($"  Operator key:          {bootstrap.OperatorApiKey}");
        }

        foreach (var tenant in bootstrap.DemoTenants)
        {
            Console.WriteLine($"  Tenant key ({tenant.Name}): {tenant.ApiKey}");
        }

        Console.WriteLine();
    }
}
