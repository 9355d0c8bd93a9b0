using MetaCompute.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace MetaCompute.Api.Health;

/// <summary>Ready means PostgreSQL answers and every migration this build knows is applied.</summary>
public sealed class DatabaseReadyCheck(MetaComputeDbContext db) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct = default)
    {
        try
        {
            var pending = (await db.Database.GetPendingMigrationsAsync(ct)).ToList();
            return pending.Count == 0
                ? HealthCheckResult.Healthy("PostgreSQL is reachable and migrated.")
                : HealthCheckResult.Unhealthy($"{pending.Count} migrations are not applied.");
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or InvalidOperationException or TimeoutException)
        {
            return HealthCheckResult.Unhealthy("PostgreSQL is not reachable.");
        }
    }
}
