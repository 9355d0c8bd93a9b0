using System.Collections.Concurrent;
using MetaCompute.Api.Data;
using MetaCompute.Scheduling;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;

namespace MetaCompute.Api.Scheduling;

/// <summary>
/// Keeps each pool's occupancy index in memory and current. A booking never reads a whole pool's allocations: under
/// the pool's lock it reads the change-log entries since the version its index knows and applies them. A batch of
/// decisions applies its own holds as it writes them (later decisions in the batch must see earlier ones); a batch
/// that fails drops the index, so nothing uncommitted survives in it.
/// </summary>
public sealed class PoolOccupancyCache(TimeProvider time)
{
    private readonly ConcurrentDictionary<string, Entry> _pools = new();

    /// <summary>
    /// Serialises allocation in the pool across every process (invariant 2): takes the pool's transaction-scoped
    /// advisory lock inside the caller's open transaction, catches the index up and runs <paramref name="use"/>, which
    /// must commit or roll back the transaction before it returns, so no other decision sees the index in between.
    /// If <paramref name="use"/> throws, the index is dropped and rebuilt on the next use: it may hold holds that
    /// never committed.
    /// </summary>
    /// <param name="withLock">Reads sent in the same round trip as the lock, after it, so they see what the previous holder committed.</param>
    public async Task<T> LockedAsync<T>(MetaComputeDbContext db, string poolId, Func<PoolOccupancy, Task<T>> use, CancellationToken ct,
        IReadOnlyList<LockedRead>? withLock = null)
    {
        var entry = _pools.GetOrAdd(poolId, _ => new Entry());
        var connection = (NpgsqlConnection)db.Database.GetDbConnection();
        // The pool's lock and the reads go out before the in-process gate is taken, so a batch can wait for the lock
        // inside PostgreSQL while the one before it commits. Every caller takes the lock before the gate, so the two
        // never wait on each other in opposite orders. The log is read from the version the index knew when the reads
        // left; what the index learned meanwhile is skipped below.
        var known = entry.Index?.Version;
        var changes = await ReadChangesAsync(connection, poolId, known, takeLock: true, withLock ?? [], ct);
        await entry.Gate.WaitAsync(ct);
        try
        {
            entry.Index = entry.Index is { } index && known is { } from && index.Version >= from
                ? await ApplyAsync(connection, db, poolId, index, changes.Where(c => c.Version > index.Version).ToList(), ct)
                : await CatchUpAsync(connection, db, poolId, entry.Index, ct);
            return await use(entry.Index);
        }
        catch
        {
            entry.Index = null;
            throw;
        }
        finally
        {
            entry.Gate.Release();
        }
    }

    /// <summary>
    /// Commits the pool's transaction (inside <see cref="LockedAsync{T}"/>) and records that the index now reflects the
    /// change log up to what this transaction wrote, so the next use reads only newer entries.
    /// </summary>
    public static async Task CommitAsync(MetaComputeDbContext db, IDbContextTransaction tx, string poolId, PoolOccupancy index, CancellationToken ct)
    {
        var version = await db.PoolChanges.Where(c => c.PoolId == poolId).MaxAsync(c => (long?)c.Version, ct) ?? 0;
        await tx.CommitAsync(ct);
        index.Version = version;
    }

    /// <summary>
    /// The command that reads the pool's change-log version; a caller that already sends a batch of writes appends it
    /// (and its COMMIT) and records what it read as the index's version, saving round trips under the pool's lock.
    /// </summary>
    public static NpgsqlBatchCommand VersionCommand(string poolId) =>
        new("SELECT coalesce(max(version), 0) FROM pool_changes WHERE pool_id = $1") { Parameters = { new NpgsqlParameter { Value = poolId } } };

    /// <summary>Drops a pool's index, so the next use rebuilds it from the database.</summary>
    public void Invalidate(string poolId)
    {
        if (_pools.TryGetValue(poolId, out var entry))
        {
            entry.Index = null;
        }
    }

    /// <summary>A read of the pool's occupancy (offerings, availability) without the pool's lock.</summary>
    public async Task<T> ReadAsync<T>(MetaComputeDbContext db, string poolId, Func<PoolOccupancy, T> read, CancellationToken ct)
    {
        var entry = _pools.GetOrAdd(poolId, _ => new Entry());
        // The in-process gate protects the index object; the advisory lock is what serialises across processes.
        await entry.Gate.WaitAsync(ct);
        try
        {
            var connection = (NpgsqlConnection)db.Database.GetDbConnection();
            // A read without the lock still needs the version and the holds from one snapshot.
            await using var snapshot = db.Database.CurrentTransaction is null
                ? await db.Database.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct)
                : null;
            entry.Index = await CatchUpAsync(connection, db, poolId, entry.Index, ct);
            var result = read(entry.Index);
            if (snapshot is not null)
            {
                await snapshot.CommitAsync(ct);
            }

            return result;
        }
        finally
        {
            entry.Gate.Release();
        }
    }

    /// <summary>The advisory-lock key of a pool: a stable 64-bit hash of its id.</summary>
    public static long PoolLockKey(string poolId)
    {
        // FNV-1a: stable across processes and .NET versions, unlike string.GetHashCode.
        var hash = 14695981039346656037UL;
        foreach (var c in "pool:" + poolId)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        return (long)hash;
    }

    private async Task<PoolOccupancy> CatchUpAsync(NpgsqlConnection connection, MetaComputeDbContext db, string poolId, PoolOccupancy? index,
        CancellationToken ct) =>
        await ApplyAsync(connection, db, poolId, index, await ReadChangesAsync(connection, poolId, index?.Version, false, [], ct), ct);

    /// <summary>Applies the change-log entries that follow the index's version, or rebuilds the index.</summary>
    private async Task<PoolOccupancy> ApplyAsync(NpgsqlConnection connection, MetaComputeDbContext db, string poolId, PoolOccupancy? index,
        List<PoolChange> changes, CancellationToken ct)
    {
        if (index is not null)
        {
            // A gap means the log was pruned past what this index knows, and a node it has never seen was registered
            // since it was built: either way, rebuild instead.
            if ((changes.Count == 0 || changes[0].Version == index.Version + 1)
                && changes.All(c => c.NodeId is not { } node || index.HasNode(node)))
            {
                foreach (var change in changes)
                {
                    Apply(index, change);
                }

                if (changes.Count > 0)
                {
                    index.Version = changes[^1].Version;
                }

                index.Forget(time.GetUtcNow().AddMinutes(-1));
                return index;
            }
        }

        return await LoadAsync(connection, db, poolId, ct);
    }

    /// <summary>
    /// The change-log entries after <paramref name="version"/> (none without one), in order. With
    /// <paramref name="takeLock"/> the pool's advisory lock is taken first in the same round trip, and the reads
    /// <paramref name="withLock"/> follow: each is its own statement, so its snapshot is taken once the lock is held
    /// and sees everything the previous holder committed.
    /// </summary>
    private static async Task<List<PoolChange>> ReadChangesAsync(NpgsqlConnection connection, string poolId, long? version, bool takeLock,
        IReadOnlyList<LockedRead> withLock, CancellationToken ct)
    {
        await using var batch = new NpgsqlBatch(connection);
        if (takeLock)
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT pg_advisory_xact_lock($1)") { Parameters = { new() { Value = PoolLockKey(poolId) } } });
        }

        batch.BatchCommands.Add(new NpgsqlBatchCommand("""
            SELECT version, lease_id, node_id, node_allocatable, start_at, end_at, node_ids, gpu_masks, created_at
            FROM pool_changes WHERE pool_id = $1 AND version > $2 ORDER BY version
            """) { Parameters = { new() { Value = poolId }, new() { Value = version ?? long.MaxValue } } });
        foreach (var read in withLock)
        {
            batch.BatchCommands.Add(read.Command);
        }

        // Prepared explicitly, as the service does not auto-prepare (PostgresSetup.WithServiceDefaults): after the first
        // batch on a connection this sends nothing, and the server no longer parses and plans these on every batch.
        await batch.PrepareAsync(ct);
        var changes = new List<PoolChange>();
        await using var reader = await batch.ExecuteReaderAsync(ct);
        if (takeLock)
        {
            await reader.NextResultAsync(ct);
        }

        while (await reader.ReadAsync(ct))
        {
            changes.Add(new PoolChange
            {
                PoolId = poolId,
                Version = reader.GetInt64(0),
                LeaseId = reader.IsDBNull(1) ? null : reader.GetGuid(1),
                NodeId = reader.IsDBNull(2) ? null : reader.GetInt32(2),
                NodeAllocatable = reader.IsDBNull(3) ? null : reader.GetBoolean(3),
                StartAt = reader.GetFieldValue<DateTimeOffset>(4),
                EndAt = reader.GetFieldValue<DateTimeOffset>(5),
                NodeIds = reader.GetFieldValue<int[]>(6),
                GpuMasks = reader.GetFieldValue<short[]>(7),
                CreatedAt = reader.GetFieldValue<DateTimeOffset>(8),
            });
        }

        foreach (var read in withLock)
        {
            await reader.NextResultAsync(ct);
            await read.ReadAsync(reader, ct);
        }

        return changes;
    }

    private static void Apply(PoolOccupancy index, PoolChange change)
    {
        if (change.NodeId is { } nodeId)
        {
            index.SetAllocatable(nodeId, change.NodeAllocatable ?? false);
            return;
        }

        var gpus = change.NodeIds.Zip(change.GpuMasks, (node, mask) => new NodeGpus(node, (byte)mask)).ToList();
        index.SetLease(new LeaseHold(change.LeaseId!.Value, change.StartAt, change.EndAt, gpus));
    }

    /// <summary>Builds the index from the nodes and the holds that have not ended; done once per pool per process.</summary>
    private async Task<PoolOccupancy> LoadAsync(NpgsqlConnection connection, MetaComputeDbContext db, string poolId, CancellationToken ct)
    {
        var version = await db.PoolChanges.Where(c => c.PoolId == poolId).MaxAsync(c => (long?)c.Version, ct) ?? 0;
        var nodes = await db.Nodes.AsNoTracking().Where(n => n.PoolId == poolId)
            .Select(n => new NodeSpec(n.Id, n.IslandId, n.RackId, n.State == NodeState.Healthy))
            .ToListAsync(ct);
        var index = new PoolOccupancy(nodes) { Version = version };

        await using var command = new NpgsqlCommand("""
            SELECT a.lease_id, lower(a.period), upper(a.period), a.node_id, bit_or(1 << g.index)::smallint
            FROM allocations a
            JOIN gpus g ON g.id = a.gpu_id
            JOIN nodes n ON n.id = a.node_id
            WHERE n.pool_id = $1 AND upper(a.period) > $2
            GROUP BY a.lease_id, a.period, a.node_id
            ORDER BY a.lease_id, a.node_id
            """, connection);
        command.Parameters.Add(new NpgsqlParameter { Value = poolId });
        command.Parameters.Add(new NpgsqlParameter { Value = time.GetUtcNow() });
        var holds = new Dictionary<Guid, (DateTimeOffset Start, DateTimeOffset End, List<NodeGpus> Gpus)>();
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                var lease = reader.GetGuid(0);
                var (start, end) = (reader.GetFieldValue<DateTimeOffset>(1), reader.GetFieldValue<DateTimeOffset>(2));
                if (!holds.TryGetValue(lease, out var hold))
                {
                    hold = (start, end, []);
                }

                // The index keeps one period per lease: rows cut short (a move, a forced window) widen to the whole,
                // which can only make GPUs look busier than they are, never free when they are not.
                holds[lease] = (start < hold.Start ? start : hold.Start, end > hold.End ? end : hold.End, hold.Gpus);
                var (nodeId, mask) = (reader.GetInt32(3), (byte)reader.GetInt16(4));
                var onNode = hold.Gpus.FindIndex(g => g.NodeId == nodeId);
                if (onNode >= 0)
                {
                    hold.Gpus[onNode] = hold.Gpus[onNode] with { Mask = (byte)(hold.Gpus[onNode].Mask | mask) };
                }
                else
                {
                    hold.Gpus.Add(new NodeGpus(nodeId, mask));
                }
            }
        }

        foreach (var (lease, hold) in holds)
        {
            index.SetLease(new LeaseHold(lease, hold.Start, hold.End, hold.Gpus));
        }

        var windows = await db.MaintenanceWindows.AsNoTracking()
            .Where(w => w.PoolId == poolId && w.Period.UpperBound > time.GetUtcNow().UtcDateTime)
            .ToListAsync(ct);
        foreach (var window in windows)
        {
            index.SetLease(new LeaseHold(window.Id, new DateTimeOffset(window.Period.LowerBound, TimeSpan.Zero),
                new DateTimeOffset(window.Period.UpperBound, TimeSpan.Zero), [new NodeGpus(window.NodeId, PoolOccupancy.FullNode)]));
        }

        return index;
    }

    /// <summary>A read sent with the pool's lock, and what to do with its rows.</summary>
    public sealed record LockedRead(NpgsqlBatchCommand Command, Func<NpgsqlDataReader, CancellationToken, Task> ReadAsync);

    private sealed class Entry
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);
        public PoolOccupancy? Index { get; set; }
    }
}
