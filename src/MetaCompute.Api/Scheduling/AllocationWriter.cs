using MetaCompute.Scheduling;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace MetaCompute.Api.Scheduling;

/// <summary>One lease's decided change to its allocation rows; the pool's change log records its new hold.</summary>
/// <param name="NewEnd">For <see cref="AllocationChange.SetEnd"/>: the lease's new end (rows a move cut short keep an earlier one).</param>
public sealed record AllocationWrite(AllocationChange Change, Guid LeaseId, DateTimeOffset Start, DateTimeOffset End, IReadOnlyList<NodeGpus> Gpus,
    DateTimeOffset At, DateTimeOffset NewEnd = default)
{
    /// <summary>Frees time on GPUs (or leaves it as it was), so it may run before a batch's new holds.</summary>
    public bool Releases => Change == AllocationChange.Delete || (Change == AllocationChange.SetEnd && NewEnd <= End);
}

public enum AllocationChange
{
    /// <summary>A new lease's rows over its window.</summary>
    Insert,

    /// <summary>
    /// The lease ends at a new time (an extension, a cancellation after the start, a recall): its rows that end with it
    /// move; rows a move or a forced window cut short end no later than before.
    /// </summary>
    SetEnd,

    /// <summary>Every row of the lease goes (a cancellation before the start); the log records an empty hold.</summary>
    Delete,
}

/// <summary>
/// The raw SQL behind allocation changes. Use cases decide <see cref="AllocationWrite"/>s (applying the same holds to
/// the pool's index, so later decisions under the same lock see them); <see cref="Commands"/> turns a transaction's
/// writes into a few statements, sent after the statements that write the leases they refer to. The rows' exclusion
/// constraint checks every write; the pool's lock is held, so the change log's max(version) + n cannot race, and its
/// primary key would refuse a duplicate.
/// </summary>
public static class AllocationWriter
{
    public static AllocationWrite Insert(Guid leaseId, DateTimeOffset start, DateTimeOffset end, IReadOnlyList<NodeGpus> gpus, DateTimeOffset now) =>
        new(AllocationChange.Insert, leaseId, start, end, gpus, now);

    /// <summary>Moves the lease's end (see <see cref="AllocationChange.SetEnd"/>); the log records the hold with its new end.</summary>
    public static AllocationWrite SetEnd(LeaseHold hold, DateTimeOffset newEnd, DateTimeOffset now) =>
        new(AllocationChange.SetEnd, hold.LeaseId, hold.Start, hold.End, hold.Gpus, now, newEnd);

    public static AllocationWrite Delete(Guid leaseId, DateTimeOffset now) => new(AllocationChange.Delete, leaseId, now, now, [], now);

    /// <summary>
    /// The statements for a transaction's writes: one per kind of row change and one for the change log, instead of
    /// two per write. The row changes that release time run first, then the extensions and the new rows: every state in
    /// between is then a part of the start state or of the end state, whose rows the decisions kept apart, so the
    /// exclusion constraint passes whenever it would write by write. A lease written twice (extended, then cancelled)
    /// keeps every write in its order.
    /// </summary>
    public static IReadOnlyList<NpgsqlBatchCommand> Commands(string poolId, IReadOnlyList<AllocationWrite> writes)
    {
        if (writes.Count == 0)
        {
            return [];
        }

        var commands = new List<NpgsqlBatchCommand>();
        if (writes.Select(w => w.LeaseId).Distinct().Count() == writes.Count)
        {
            RowCommands(writes.Where(w => w.Releases), commands);
            RowCommands(writes.Where(w => !w.Releases), commands);
        }
        else
        {
            foreach (var write in writes)
            {
                RowCommands([write], commands);
            }
        }

        commands.Add(ChangeLogCommand(poolId, writes));
        return commands;
    }

    /// <summary>The row statements for writes of distinct leases: deletions, moved ends, new rows, in that order.</summary>
    private static void RowCommands(IEnumerable<AllocationWrite> writes, List<NpgsqlBatchCommand> commands)
    {
        var byKind = writes.ToLookup(w => w.Change);
        if (byKind[AllocationChange.Delete].Select(w => w.LeaseId).ToArray() is { Length: > 0 } deleted)
        {
            commands.Add(Command("DELETE FROM allocations WHERE lease_id = ANY($1)", deleted));
        }

        if (byKind[AllocationChange.SetEnd].ToList() is { Count: > 0 } moved)
        {
            // Rows that end with the lease move to its new end. Rows a move or a forced window cut short keep their
            // end (or take the new one if it is earlier): growing them back would hand the lease its old GPUs again.
            // Not a join with unnest: its generic plan hashes the whole table (2.2 ms a batch against 0.6 ms for one
            // statement per lease); ANY keeps the lease_id index, and a batch has at most a few dozen leases to look up.
            commands.Add(Command("""
                UPDATE allocations SET period = tstzrange(lower(period),
                    CASE WHEN upper(period) = ($2::timestamptz[])[array_position($1::uuid[], lease_id)]
                         THEN ($3::timestamptz[])[array_position($1::uuid[], lease_id)]
                         ELSE least(upper(period), ($3::timestamptz[])[array_position($1::uuid[], lease_id)]) END, '[)')
                WHERE lease_id = ANY($1)
                """, moved.Select(w => w.LeaseId).ToArray(), moved.Select(w => w.End).ToArray(), moved.Select(w => w.NewEnd).ToArray()));
        }

        var rows = byKind[AllocationChange.Insert]
            .SelectMany(w => w.Gpus.SelectMany(node => node.Indices()
                .Select(index => (Write: w, Node: node.NodeId, Gpu: (long)node.NodeId * PoolOccupancy.GpusPerNode + index))))
            .ToList();
        if (rows.Count > 0)
        {
            commands.Add(Command($"""
                INSERT INTO allocations (lease_id, gpu_id, node_id, period)
                SELECT l, g, n, tstzrange(s, e, '[)')
                FROM {ParameterRows("uuid", "bigint", "int", "timestamptz", "timestamptz")} AS t(l, g, n, s, e)
                """, rows.Select(r => r.Write.LeaseId).ToArray(), rows.Select(r => r.Gpu).ToArray(), rows.Select(r => r.Node).ToArray(),
                rows.Select(r => r.Write.Start).ToArray(), rows.Select(r => r.Write.End).ToArray()));
        }
    }

    /// <summary>
    /// Appends each write's new hold to the pool's change log, in the order given (a reader applies them in version
    /// order, so the last write of a lease wins). Each hold's nodes and masks travel as one slice of two flat arrays.
    /// </summary>
    private static NpgsqlBatchCommand ChangeLogCommand(string poolId, IReadOnlyList<AllocationWrite> writes)
    {
        var (firsts, lasts, nodes, masks) = (new int[writes.Count], new int[writes.Count], new List<int>(), new List<short>());
        for (var i = 0; i < writes.Count; i++)
        {
            firsts[i] = nodes.Count + 1;
            nodes.AddRange(writes[i].Gpus.Select(g => g.NodeId));
            masks.AddRange(writes[i].Gpus.Select(g => (short)g.Mask));
            lasts[i] = nodes.Count;
        }

        return Command($"""
            INSERT INTO pool_changes (pool_id, version, lease_id, start_at, end_at, node_ids, gpu_masks, created_at)
            SELECT $7, last.version + t.ord, t.lease_id, t.start_at, t.end_at,
                   ($8::int[])[t.first:t.last], ($9::smallint[])[t.first:t.last], t.created_at
            FROM {ParameterRows("uuid", "timestamptz", "timestamptz", "int", "int", "timestamptz")} AS t(lease_id, start_at, end_at, first, last, created_at, ord)
            CROSS JOIN (SELECT coalesce(max(version), 0) AS version FROM pool_changes WHERE pool_id = $7) AS last
            """, writes.Select(w => w.LeaseId).ToArray(), writes.Select(w => w.Start).ToArray(),
            writes.Select(w => w.Change == AllocationChange.SetEnd ? w.NewEnd : w.End).ToArray(), firsts, lasts, writes.Select(w => w.At).ToArray(),
            poolId, nodes.ToArray(), masks.ToArray());
    }

    /// <summary>
    /// Appends a hold that has no allocation rows (a maintenance window; an empty one takes it back) to the pool's
    /// change log at once, so every replica's index learns it.
    /// </summary>
    public static async Task AppendHoldAsync(Data.MetaComputeDbContext db, string poolId, Guid holdId, DateTimeOffset start, DateTimeOffset end,
        IReadOnlyList<NodeGpus> gpus, DateTimeOffset now, CancellationToken ct)
    {
        await using var command = ((NpgsqlConnection)db.Database.GetDbConnection()).CreateCommand();
        var change = ChangeLogCommand(poolId, [new AllocationWrite(AllocationChange.Insert, holdId, start, end, gpus, now)]);
        command.CommandText = change.CommandText;
        command.Parameters.AddRange(change.Parameters.Select(p => new NpgsqlParameter { Value = p.Value }).ToArray());
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// A row source over the array parameters $1, $2, … of the given element types, one row per index: the elements
    /// at that index, then the index (from 1), for the caller's alias list to name, as in
    /// <c>{ParameterRows("uuid", "text")} AS v(id, name, ord)</c>. A batch sends its rows this way, one array per column.
    /// Not <c>unnest($1, $2, …)</c>: PostgreSQL materialises each array it unnests in a tuplestore of its own, with a
    /// 16 kB block each, and when a statement frees a dozen of them glibc gives the top of the heap back to the kernel,
    /// for the next statement to fault in again (three <c>brk</c> calls a statement of 18 arrays under <c>strace</c>;
    /// none this way).
    /// </summary>
    internal static string ParameterRows(params string[] elementTypes) =>
        $"(SELECT {string.Join(", ", elementTypes.Select((type, k) => $"(${k + 1}::{type}[])[i]"))}, i FROM generate_subscripts($1::{elementTypes[0]}[], 1) AS i)";

    /// <summary>A batch command with positional parameters ($1, $2, ...) in the order given.</summary>
    internal static NpgsqlBatchCommand Command(string sql, params object[] values)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var value in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        }

        return command;
    }
}
