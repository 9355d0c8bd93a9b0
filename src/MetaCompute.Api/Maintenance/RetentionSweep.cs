using MetaCompute.Api.Data;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Maintenance;

public sealed class RetentionOptions
{
    /// <summary>Idempotency keys are kept at least this long (the IETF draft suggests 24 hours).</summary>
    public TimeSpan IdempotencyKeys { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Change-log entries older than this are pruned; a decider that fell further behind rebuilds its index.</summary>
    public TimeSpan PoolChanges { get; set; } = TimeSpan.FromHours(1);

    public TimeSpan Interval { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>Prunes what only needs keeping for a while: old idempotency keys and old change-log entries.</summary>
public static class RetentionSweep
{
    public static async Task<(int Keys, int Changes)> RunAsync(MetaComputeDbContext db, RetentionOptions options, DateTimeOffset now, CancellationToken ct)
    {
        var keyCutoff = now - options.IdempotencyKeys;
        var keys = await db.IdempotencyKeys.Where(k => k.CreatedAt < keyCutoff).ExecuteDeleteAsync(ct);
        var changeCutoff = now - options.PoolChanges;
        // Each pool's newest entry stays: it carries the pool's current version.
        var changes = await db.Database.ExecuteSqlAsync($"""
            DELETE FROM pool_changes c
            WHERE c.created_at < {changeCutoff}
              AND c.version < (SELECT max(version) FROM pool_changes m WHERE m.pool_id = c.pool_id)
            """, ct);
        return (keys, changes);
    }
}

public sealed class RetentionService(IServiceScopeFactory scopes, TimeProvider time, Microsoft.Extensions.Options.IOptions<RetentionOptions> options,
    ILogger<RetentionService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.Interval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<MetaComputeDbContext>();
                var (keys, changes) = await RetentionSweep.RunAsync(db, options.Value, time.GetUtcNow(), stoppingToken);
                logger.LogInformation("Retention pruned {Keys} idempotency keys and {Changes} change-log entries", keys, changes);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Retention sweep failed; it runs again next interval");
            }
        }
    }
}
