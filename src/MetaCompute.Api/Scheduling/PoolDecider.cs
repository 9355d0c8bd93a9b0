using System.Collections.Concurrent;
using System.Threading.Channels;
using MetaCompute.Api.Data;
using MetaCompute.Api.Idempotency;
using MetaCompute.Scheduling;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Options;
using Npgsql;
using JsonOptions = Microsoft.AspNetCore.Http.Json.JsonOptions;

namespace MetaCompute.Api.Scheduling;

/// <summary>A use case that changes a pool's allocations, run inside its pool's batch transaction.</summary>
public delegate Task<Outcome> PoolEffect(MetaComputeDbContext db, PoolOccupancy index, DateTimeOffset now, CancellationToken ct);

public sealed record PoolWork(Guid TenantId, string Key, byte[] RequestHash, PoolEffect Effect, Guid? ReservationId = null)
{
    public TaskCompletionSource<IResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public int Attempts { get; set; }

    /// <summary>Whether the decider looks the key up before deciding; a request decided again always does.</summary>
    public bool LookUpKey { get; set; }
}

/// <summary>
/// One decider per pool per process. Allocation in a pool is serialised (invariant 2), and a commit's fsync under the
/// pool's lock would cap a pool at one commit's latency per booking; so the decider takes whatever requests are queued
/// and decides them in one transaction under one lock, and commits once; if one request fails, the batch rolls back
/// and its requests are decided again one by one. Nobody is answered before that commit: a 2xx still means committed.
/// While a batch's writes and COMMIT are on their way, the next batch already waits for the pool's lock inside
/// PostgreSQL, on a connection of its own, and it forms when the lock comes: requests that arrive until its own writes
/// leave join it. So PostgreSQL writes one batch while the decider decides the next, and a request waits for the batch
/// in progress only when it arrives after that batch's writes left. After a batch of two or more, the next one queues
/// for the lock even before a request arrives (for the tenants just seen) and waits up to
/// <see cref="FirstRequestWait"/> for its first.
/// </summary>
public sealed class PoolDecider(IServiceScopeFactory scopes, PoolOccupancyCache cache, TimeProvider time, IOptions<JsonOptions> json,
    ILogger<PoolDecider> logger)
{
    /// <summary>Bounds one transaction's length, so a long queue is worked off in several commits.</summary>
    public const int MaxBatch = 64;

    /// <summary>How long a batch that queued for the lock before any request waits for one, holding the lock.</summary>
    public static readonly TimeSpan FirstRequestWait = TimeSpan.FromMilliseconds(5);

    private const int MaxAttempts = 3;
    private readonly ConcurrentDictionary<string, Channel<PoolWork>> _queues = new();
    private readonly RecentKeys _recentKeys = new();

    public Task<IResult> SubmitAsync(string poolId, PoolWork work)
    {
        var queue = _queues.GetOrAdd(poolId, id =>
        {
            var channel = Channel.CreateUnbounded<PoolWork>(new UnboundedChannelOptions { SingleReader = true });
            _ = Task.Run(() => RunAsync(id, channel));
            return channel;
        });
        queue.Writer.TryWrite(work);
        return work.Done.Task;
    }

    private async Task RunAsync(string poolId, Channel<PoolWork> channel)
    {
        // Requests that could not join a batch under way go first in the next.
        var deferred = new List<PoolWork>();
        IReadOnlyCollection<Guid> lastTenants = [];
        Task<List<PoolWork>>? committing = null;
        while (true)
        {
            if (lastTenants.Count == 0 && deferred.Count == 0 && !channel.Reader.TryPeek(out _))
            {
                if (committing is not null)
                {
                    Requeue(await committing);
                    committing = null;
                    continue;
                }

                if (!await channel.Reader.WaitToReadAsync())
                {
                    return;
                }
            }

            var batch = deferred.Take(MaxBatch).ToList();
            deferred = deferred.Skip(MaxBatch).ToList();
            while (batch.Count < MaxBatch && channel.Reader.TryRead(out var work))
            {
                batch.Add(work);
            }

            var joining = new Joining(channel.Reader, deferred, lastTenants, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            var running = ExecuteBatchAsync(poolId, batch, joining);
            // Once this batch's writes are on their way, the next batch may queue for the pool's lock.
            await Task.WhenAny(joining.WritesSent.Task, running);
            lastTenants = batch.Count >= 2 ? batch.Select(w => w.TenantId).ToHashSet() : [];
            if (committing is not null)
            {
                Requeue(await committing);
            }

            committing = running;
        }

        void Requeue(List<PoolWork> again)
        {
            foreach (var work in again)
            {
                channel.Writer.TryWrite(work);
            }
        }
    }

    /// <summary>
    /// Decides a batch; answers every request in it, or hands back those worth another attempt. If one request fails,
    /// the whole transaction is rolled back and each request is decided again on its own, so one failure never takes
    /// the others with it and never leaves half a request behind.
    /// </summary>
    private async Task<List<PoolWork>> ExecuteBatchAsync(string poolId, List<PoolWork> batch, Joining? joining = null)
    {
        var retry = new List<PoolWork>();
        try
        {
            foreach (var (work, result) in await DecideAsync(poolId, batch, joining))
            {
                work.Done.TrySetResult(result);
            }
        }
        catch (RequestFailedException failed) when (batch.Count > 1)
        {
            logger.LogInformation(failed.InnerException, "A request failed in a batch of {Count} in {PoolId}; deciding them one by one", batch.Count, poolId);
            foreach (var work in batch)
            {
                work.LookUpKey = true;
                retry.AddRange(await ExecuteBatchAsync(poolId, [work]));
            }
        }
        catch (Exception e)
        {
            var cause = e is RequestFailedException failed ? failed.InnerException! : e;
            foreach (var work in batch.Where(w => !w.Done.Task.IsCompleted))
            {
                Fail(work, cause, retry);
            }
        }

        joining?.WritesSent.TrySetResult();
        return retry;
    }

    /// <param name="batch">The requests to decide; those that join on the way are appended to it.</param>
    /// <param name="joining">Where later requests come from, and where those that cannot join go; none when deciding one request again.</param>
    private async Task<List<(PoolWork Work, IResult Result)>> DecideAsync(string poolId, List<PoolWork> batch, Joining? joining)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<MetaComputeDbContext>();
        // The batch saves once inside its transaction; a savepoint around that save would only add round trips.
        db.Database.AutoSavepointsEnabled = false;
        // Each quota check reads the unit of work, and EF would scan every tracked entity for changes on each read;
        // the requests change entities only through their own objects, so one scan before the save is enough.
        db.ChangeTracker.AutoDetectChangesEnabled = false;
        // The batch commits by sending COMMIT with its last writes, one round trip fewer than tx.Commit; Npgsql then sees
        // the transaction completed, so disposing it rolls nothing back. On any failure before that, disposal rolls back.
        await using var tx = await db.Database.BeginTransactionAsync();
        var connection = (NpgsqlConnection)db.Database.GetDbConnection();
        // What the batch's requests read first, sent with the pool's lock in one round trip: tracked, their tenants'
        // quotas and live reservations (quota sweeps read them from the unit of work, where they also see the batch's
        // unsaved changes), and the states of the keys to look up: those this process has seen lately (a retry, a
        // replay). Any other key is decided unchecked and verified with the writes (KeyState.Unchecked), which lets
        // requests that arrive after this round trip has left join the batch.
        foreach (var work in batch.Where(w => _recentKeys.Contains(w.TenantId, w.Key)))
        {
            work.LookUpKey = true;
        }

        var lookedUp = batch.Where(w => w.LookUpKey).ToList();
        var tenantIds = batch.Select(w => w.TenantId).Concat(joining?.ExpectedTenants ?? []).ToHashSet();
        KeyState[] found = [];
        List<PoolOccupancyCache.LockedRead> withLock =
        [
            new(Reservations.Quotas.LimitsCommand(poolId, tenantIds), (reader, ct) => Reservations.Quotas.AttachLimitsAsync(db, poolId, reader, ct)),
            new(Reservations.Quotas.LiveCommand(poolId, tenantIds, time.GetUtcNow() - Reservations.Quotas.LookBack),
                (reader, ct) => Reservations.Quotas.AttachLiveAsync(db, reader, ct)),
        ];
        if (lookedUp.Count > 0)
        {
            withLock.Add(new(IdempotentRequest.LookUpKeysCommand(lookedUp), async (reader, ct) => found = await IdempotentRequest.ReadKeysAsync(reader, ct)));
        }

        return await cache.LockedAsync(db, poolId, async index =>
        {
            // PostgreSQL keeps microseconds; answers built in memory must match what a later read returns.
            var clock = time.GetUtcNow();
            var now = clock.AddTicks(-(clock.UtcTicks % 10));
            var answered = new List<(PoolWork Work, IResult Result)>();
            await using var writes = new NpgsqlBatch(connection, (NpgsqlTransaction)tx.GetDbTransaction());
            var answeredInBatch = new Dictionary<(Guid, string), StoredAnswer>();
            var allocationWrites = new List<AllocationWrite>();
            long? version = null;
            try
            {
                // A reservation being cancelled or extended is usually live, so the lock's reads track it already.
                var reservationIds = batch.Where(w => w.ReservationId is { } id && db.Reservations.Local.FindEntry(id) is null)
                    .Select(w => w.ReservationId!.Value).Distinct().ToList();
                if (reservationIds.Count > 0)
                {
                    await db.Reservations.Include(r => r.Lease).Where(r => reservationIds.Contains(r.Id)).LoadAsync();
                }

                var keys = new Queue<KeyState>(found);
                for (var i = 0; i < batch.Count || joining is not null && await JoinAsync(batch, joining, tenantIds, db); i++)
                {
                    var work = batch[i];
                    _recentKeys.Add(work.TenantId, work.Key);
                    var (result, requestWrites) = await IdempotentRequest.ExecuteAsync(db, index, work, work.LookUpKey ? keys.Dequeue() : KeyState.Unchecked,
                        answeredInBatch, now, json.Value.SerializerOptions, CancellationToken.None);
                    answered.Add((work, result));
                    allocationWrites.AddRange(requestWrites ?? []);
                }

                // One round trip for the whole batch's writes: its reservations and leases, its allocation writes (a few
                // statements for the whole batch; their rows refer to the leases), its events and key rows, the
                // change-log version it leaves, and COMMIT. A batch that also changed something else (a refund's charge,
                // a recall) has EF save all but its events and key rows first, in a round trip of its own.
                db.ChangeTracker.DetectChanges();
                var (before, after) = BatchRows.Take(db);
                if (db.ChangeTracker.HasChanges())
                {
                    await db.SaveChangesAsync();
                }

                if (batch.Where(w => !w.LookUpKey).ToList() is { Count: > 0 } uncheckedKeys)
                {
                    writes.BatchCommands.Add(IdempotentRequest.TakeUncheckedKeysCommand(uncheckedKeys));
                }

                foreach (var command in before.Concat(AllocationWriter.Commands(poolId, allocationWrites)).Concat(after))
                {
                    writes.BatchCommands.Add(command);
                }

                writes.BatchCommands.Add(PoolOccupancyCache.VersionCommand(poolId));
                writes.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
                // Prepared explicitly, like the lock's reads (PoolOccupancyCache.ReadChangesAsync).
                await writes.PrepareAsync();
                var executing = writes.ExecuteReaderAsync();
                joining?.WritesSent.TrySetResult();
                await using (var results = await executing)
                {
                    // The version is the last result with a row (a row-count check before it returns one too).
                    do
                    {
                        if (results.FieldCount > 0 && await results.ReadAsync())
                        {
                            version = results.GetInt64(0);
                        }
                    }
                    while (await results.NextResultAsync());
                }
            }
            catch (Exception e)
            {
                // Leaving LockedAsync by an exception drops the index, which may now hold holds that never commit.
                throw new RequestFailedException(e);
            }

            // Committed with the last writes: the index now reflects the change log up to what this batch wrote.
            index.Version = version!.Value;
            return answered;
        }, CancellationToken.None, withLock);
    }

    /// <summary>
    /// Takes the next queued request that can join the batch under way: one whose key is new to this process (a key to
    /// look up would need a round trip), whose tenant's quota and live reservations the lock's reads brought, and whose
    /// reservation, if it changes one, is among them. Others wait for the next batch.
    /// </summary>
    private async Task<bool> JoinAsync(List<PoolWork> batch, Joining joining, HashSet<Guid> tenantIds, MetaComputeDbContext db)
    {
        // A batch that queued for the lock before any request came waits briefly for its first: the answers of the batch
        // before it are on their way to clients that will send their next requests.
        if (batch.Count == 0 && !joining.Queue.TryPeek(out _))
        {
            using var wait = new CancellationTokenSource(FirstRequestWait);
            try
            {
                await joining.Queue.WaitToReadAsync(wait.Token);
            }
            catch (OperationCanceledException)
            {
                // None came: the batch commits empty and the lock passes on.
            }
        }

        while (batch.Count < MaxBatch && joining.Queue.TryRead(out var work))
        {
            if (work.LookUpKey || _recentKeys.Contains(work.TenantId, work.Key) || !tenantIds.Contains(work.TenantId)
                || work.ReservationId is { } id && db.Reservations.Local.FindEntry(id) is null)
            {
                joining.Deferred.Add(work);
                continue;
            }

            batch.Add(work);
            return true;
        }

        return false;
    }

    /// <summary>The pool's queue, for requests joining a batch under way, and the list of those left for the next.</summary>
    private sealed record Joining(ChannelReader<PoolWork> Queue, List<PoolWork> Deferred, IReadOnlyCollection<Guid> ExpectedTenants,
        TaskCompletionSource WritesSent);

    private sealed class RequestFailedException(Exception inner) : Exception("A request in a batch failed.", inner);

    /// <summary>Contention (serialization, deadlock, a conflicting hold) earns another attempt; anything else is the answer.</summary>
    private static void Fail(PoolWork work, Exception e, List<PoolWork> retry)
    {
        var pg = e as PostgresException ?? e.InnerException as PostgresException;
        // A reservation the scheduler moved on meanwhile (its row version changed) is decided again on the new state.
        // A unique violation is a key decided unchecked that was stored after all: decided again, it is looked up.
        var retryable = pg?.SqlState is PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected
            or PostgresErrorCodes.ExclusionViolation || pg?.SqlState == PostgresErrorCodes.UniqueViolation && !work.LookUpKey
            || e is DbUpdateConcurrencyException;
        if (retryable && ++work.Attempts < MaxAttempts)
        {
            work.LookUpKey = true;
            retry.Add(work);
        }
        else
        {
            work.Done.TrySetException(e);
        }
    }
}
