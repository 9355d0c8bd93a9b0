using MetaCompute.Api.Billing;
using MetaCompute.Api.Data;
using MetaCompute.Api.Reservations;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;

namespace MetaCompute.Api.Scheduling;

/// <summary>
/// Runs the scheduler's tick in the one process that holds the leader lock: a session-level PostgreSQL advisory lock
/// on a connection of its own. Other instances try again every interval, so one takes over when the leader's
/// connection dies.
/// </summary>
public sealed class SchedulerService(IServiceScopeFactory scopes, TimeProvider time, IOptions<SchedulerOptions> options,
    IOptions<QuotaOptions> quotas, PoolOccupancyCache occupancy, FaultInjector faults, IOptions<FaultOptions> faultOptions,
    IOptions<BillingOptions> billing, ILogger<SchedulerService> logger) : BackgroundService
{
    public const long LeaderLockKey = 0x4d43_5343_4844; // "MCSCHD"

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.TickInterval, time);
        NpgsqlConnection? leader = null;
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await using var scope = scopes.CreateAsyncScope();
                    var db = scope.ServiceProvider.GetRequiredService<MetaComputeDbContext>();
                    leader ??= await TryLeadAsync(db.Database.GetConnectionString()!, stoppingToken);
                    if (leader is null)
                    {
                        continue;
                    }

                    var now = time.GetUtcNow();
                    if (faultOptions.Value.Enabled)
                    {
                        var injected = await faults.TickAsync(db, now, stoppingToken);
                        if (injected != new FaultInjector.Result(0, 0))
                        {
                            logger.LogInformation("Fault model: {Failed} nodes failed, {Restored} repaired", injected.Failed, injected.Restored);
                        }
                    }

                    // Admission first, so a request admitted to start now is activated by the same tick.
                    var queue = await RequestQueue.RunAsync(db, occupancy, options.Value, quotas.Value, now, stoppingToken);
                    var result = await LifecycleTick.RunAsync(db, options.Value, now, stoppingToken);
                    var metered = await MeteringTick.RunAsync(db, billing.Value, now, stoppingToken);
                    if (metered.Hours > 0)
                    {
                        logger.LogInformation("Metered {Hours} h: {Charges} usage charges, {Credits} credits, {Months} months invoiced",
                            metered.Hours, metered.UsageCharges, metered.Credits, metered.MonthsClosed);
                    }

                    if (queue != new RequestQueue.Result(0, 0) || result != new LifecycleTick.Result(0, 0, 0))
                    {
                        logger.LogInformation(
                            "Tick: {Admitted} admitted, {Rejected} rejected, {Activated} activated, {EndingSoon} ending soon, {Completed} completed, {Recalled} recalled",
                            queue.Admitted, queue.Rejected, result.Activated, result.EndingSoon, result.Completed, result.Recalled);
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                {
                    // A failed tick must not stop the scheduler. The lock lives with its connection: after a failure,
                    // give it up and compete again.
                    logger.LogWarning(e, "Scheduler tick failed; leadership is released and retaken next interval");
                    if (leader is not null)
                    {
                        await leader.DisposeAsync();
                        leader = null;
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
        finally
        {
            if (leader is not null)
            {
                await leader.DisposeAsync();
            }
        }
    }

    private async Task<NpgsqlConnection?> TryLeadAsync(string connectionString, CancellationToken ct)
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand($"SELECT pg_try_advisory_lock({LeaderLockKey})", connection);
        if (await command.ExecuteScalarAsync(ct) is true)
        {
            logger.LogInformation("This instance is the scheduler's leader");
            if (faultOptions.Value.Enabled)
            {
                logger.LogInformation(
                    "Fault model is on (seed {Seed}, {TimeScale}x simulated time): nodes fail at the rate and with the causes of a 16,384-GPU training run",
                    faultOptions.Value.Seed, faultOptions.Value.TimeScale);
            }
            return connection;
        }

        await connection.DisposeAsync();
        return null;
    }
}
