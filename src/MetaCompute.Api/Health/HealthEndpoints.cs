using Microsoft.AspNetCore.Diagnostics.HealthChecks;

namespace MetaCompute.Api.Health;

public static class HealthEndpoints
{
    public const string ReadyTag = "ready";

    public static IServiceCollection AddMetaComputeHealthChecks(this IServiceCollection services)
    {
        services.AddHealthChecks().AddCheck<DatabaseReadyCheck>("database", tags: [ReadyTag]);
        return services;
    }

    /// <summary>Live: the process answers. Ready: it can serve (database reachable and migrated).</summary>
    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false }).DisableRateLimiting();
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains(ReadyTag) }).DisableRateLimiting();
        return app;
    }
}
