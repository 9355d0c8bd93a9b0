using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Scheduling;
using MetaCompute.Scheduling;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;
using JsonOptions = Microsoft.AspNetCore.Http.Json.JsonOptions;

namespace MetaCompute.Api.Idempotency;

/// <summary>
/// What a mutating use case answered: stored with the key, and replayed for the same key and body. Effects add their
/// entities without saving and return their allocation writes; the decider sends the batch's reservations and leases,
/// then every request's <see cref="Writes"/> (their rows refer to those leases; Scheduling/AllocationWriter merges them
/// into a few statements), then the batch's events and key rows and its commit, all in one round trip.
/// </summary>
public sealed record Outcome(int Status, object Body, string? Location = null, IReadOnlyList<AllocationWrite>? Writes = null)
{
    public static Outcome Problem(int status, string type, string title, string detail, IDictionary<string, object?>? extensions = null)
    {
        var problem = new ProblemDetails { Status = status, Type = type, Title = title, Detail = detail };
        foreach (var (key, value) in extensions ?? new Dictionary<string, object?>())
        {
            problem.Extensions[key] = value;
        }

        return new Outcome(status, problem);
    }
}

/// <summary>
/// Runs a tenant's mutating request at most once per <c>Idempotency-Key</c> (IETF draft semantics): the same key and
/// body replay the stored status and body; the same key with another body is 422; a key whose first request is still
/// running is 409; a missing key is 400. The effect runs in its pool's decider, and the key row is written in the
/// same transaction as the effect, so a 2xx means both committed.
/// </summary>
public sealed class IdempotentRequest(PoolDecider decider, IOptions<JsonOptions> json)
{
    public const string HeaderName = "Idempotency-Key";
    public const string KeyReusedType = Problems.BaseUri + "idempotency-key-reused";
    public const string KeyInFlightType = Problems.BaseUri + "idempotency-key-in-flight";
    public const string KeyMissingType = Problems.BaseUri + "idempotency-key-missing";

    /// <summary>What the OpenAPI document says of an operation run through here: the key it takes and the headers it answers.</summary>
    public static object[] OpenApiMetadata(params int[] successStatuses) =>
    [
        new TakesHeader(HeaderName, Required: true, MaxLength: 255,
            "Makes the change at most once: the same key and body replay the first answer, another body with it is 422, and a key whose first request is still running is 409. Kept at least 24 hours."),
        new AnswersHeader(StatusCodes.Status409Conflict, "Retry-After", "With idempotency-key-in-flight: seconds to wait before retrying."),
        .. successStatuses.Select(status => new AnswersHeader(status, "Idempotent-Replayed", "true when this is the stored answer to an earlier request with the same key.")),
    ];

    /// <param name="reservationId">The existing reservation the effect changes, loaded for the whole batch at once.</param>
    public async Task<IResult> RunAsync(HttpContext http, Guid tenantId, object? request, string poolId, PoolEffect effect, Guid? reservationId = null)
    {
        string? key = http.Request.Headers[HeaderName];
        if (string.IsNullOrWhiteSpace(key) || key.Length > 255)
        {
            var fault = string.IsNullOrWhiteSpace(key) ? "Required." : $"At most 255 characters; this one has {key.Length}.";
            return TypedResults.Problem(
                title: "Idempotency-Key required",
                detail: "Send an Idempotency-Key header (1–255 characters, e.g. a UUID) with every create, cancel and extend.",
                statusCode: StatusCodes.Status400BadRequest, type: KeyMissingType,
                extensions: new Dictionary<string, object?> { ["errors"] = new Dictionary<string, string[]> { [HeaderName] = [fault] } });
        }

        var body = request is null ? "" : JsonSerializer.Serialize(request, request.GetType(), json.Value.SerializerOptions);
        // The method, the path and the body as the API parsed it, so formatting differences do not count.
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{http.Request.Method} {http.Request.Path}\n{body}"));
        var result = await decider.SubmitAsync(poolId, new PoolWork(tenantId, key, hash, effect, reservationId));
        if (result is ReplayResult { InFlight: true })
        {
            http.Response.Headers.RetryAfter = "1";
        }

        return result;
    }

    /// <summary>
    /// The in-flight check (a transaction-scoped advisory lock on each key) and the stored answers, for every request
    /// of a batch in one statement; the decider sends it with the pool's lock and reads it with <see cref="ReadKeysAsync"/>.
    /// Each key is one probe of the primary key: the LIMIT keeps the planner from turning the lookups into a join,
    /// which it chose over a seq scan while its statistics still saw a young, small table (1.5 ms a batch at 66,000 keys).
    /// </summary>
    internal static NpgsqlBatchCommand LookUpKeysCommand(IReadOnlyList<PoolWork> batch) => new($"""
        SELECT pg_try_advisory_xact_lock(w.lock_key), k.request_hash, k.response_status, k.response_body, k.location
        FROM {AllocationWriter.ParameterRows("bigint", "uuid", "text")} AS w(lock_key, tenant_id, key, ord)
        LEFT JOIN LATERAL (
            SELECT request_hash, response_status, response_body, location FROM idempotency_keys
            WHERE tenant_id = w.tenant_id AND key = w.key LIMIT 1) k ON true
        ORDER BY w.ord
        """)
    {
        Parameters =
        {
            new() { Value = batch.Select(LockKey).ToArray() },
            new() { Value = batch.Select(w => w.TenantId).ToArray() },
            new() { Value = batch.Select(w => w.Key).ToArray() },
        },
    };

    /// <summary>
    /// The in-flight check for keys decided without a look-up (see <see cref="KeyState.Unchecked"/>), sent first with
    /// the batch's writes: each key's advisory lock, as <see cref="LookUpKeysCommand"/> takes it, and a key held
    /// elsewhere aborts the batch as a serialization failure. A key already stored fails the batch on its row's primary
    /// key. Either way the decider decides the requests again, each with its key looked up.
    /// </summary>
    internal static NpgsqlBatchCommand TakeUncheckedKeysCommand(IEnumerable<PoolWork> works) =>
        new("SELECT take_idempotency_key_locks($1)") { Parameters = { new() { Value = works.Select(LockKey).ToArray() } } };

    /// <summary>The transaction-scoped advisory lock that marks a tenant's key in flight.</summary>
    private static long LockKey(PoolWork work) => BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes($"{work.TenantId}:{work.Key}")));

    /// <summary>The key states of a batch, in its order, from the result of <see cref="LookUpKeysCommand"/>.</summary>
    internal static async Task<KeyState[]> ReadKeysAsync(NpgsqlDataReader reader, CancellationToken ct)
    {
        var states = new List<KeyState>();
        while (await reader.ReadAsync(ct))
        {
            states.Add(new KeyState(reader.GetBoolean(0), reader.IsDBNull(1)
                ? null
                : new StoredAnswer(reader.GetFieldValue<byte[]>(1), reader.GetInt32(2), reader.GetString(3), reader.IsDBNull(4) ? null : reader.GetString(4))));
        }

        return states.ToArray();
    }

    /// <summary>
    /// One request inside its pool's batch: answer in flight, replay or reuse from the key's state (or from an earlier
    /// request of the same batch with the same key), else run the effect and add the key row to the batch's unit of
    /// work, which the decider saves once for the whole batch.
    /// </summary>
    internal static async Task<(IResult Result, IReadOnlyList<AllocationWrite>? Writes)> ExecuteAsync(MetaComputeDbContext db, PoolOccupancy index,
        PoolWork work, KeyState state, Dictionary<(Guid, string), StoredAnswer> answeredInBatch, DateTimeOffset now, JsonSerializerOptions json,
        CancellationToken ct)
    {
        if (!state.Acquired)
        {
            return (ReplayResult.Problem(StatusCodes.Status409Conflict, KeyInFlightType, "Request in flight",
                "A request with this Idempotency-Key is still being processed; retry shortly to get its answer.", json, inFlight: true), null);
        }

        if ((answeredInBatch.GetValueOrDefault((work.TenantId, work.Key)) ?? state.Stored) is { } stored)
        {
            return (stored.Hash.AsSpan().SequenceEqual(work.RequestHash)
                ? new ReplayResult(stored.Status, stored.Body, stored.Location, replayed: true)
                : ReplayResult.Problem(StatusCodes.Status422UnprocessableEntity, KeyReusedType, "Idempotency-Key reused",
                    "This Idempotency-Key was used with a different request; use a new key for a new request.", json), null);
        }

        var outcome = await work.Effect(db, index, now, ct);
        var body = JsonSerializer.Serialize(outcome.Body, outcome.Body.GetType(), json);
        db.IdempotencyKeys.Add(new IdempotencyRecord
        {
            TenantId = work.TenantId,
            Key = work.Key,
            RequestHash = work.RequestHash,
            ResponseStatus = outcome.Status,
            ResponseBody = body,
            Location = outcome.Location,
            CreatedAt = now,
        });
        answeredInBatch[(work.TenantId, work.Key)] = new StoredAnswer(work.RequestHash, outcome.Status, body, outcome.Location);
        return (new ReplayResult(outcome.Status, body, outcome.Location, replayed: false), outcome.Writes);
    }
}

internal sealed record StoredAnswer(byte[] Hash, int Status, string Body, string? Location);

internal sealed record KeyState(bool Acquired, StoredAnswer? Stored)
{
    /// <summary>
    /// A key the decider did not look up, because this process has not seen it: assumed new, and checked with the
    /// batch's writes (<see cref="IdempotentRequest.TakeUncheckedKeysCommand"/> and the key row's primary key).
    /// </summary>
    public static readonly KeyState Unchecked = new(true, null);
}

/// <summary>Writes an answer as it was first given; a replay says so in <c>Idempotent-Replayed</c>.</summary>
internal sealed class ReplayResult(int status, string body, string? location, bool replayed) : IResult
{
    public bool InFlight { get; private init; }

    public static ReplayResult Problem(int status, string type, string title, string detail, JsonSerializerOptions json, bool inFlight = false) =>
        new(status, JsonSerializer.Serialize(new ProblemDetails { Status = status, Type = type, Title = title, Detail = detail }, json), null, false)
        {
            InFlight = inFlight,
        };

    public async Task ExecuteAsync(HttpContext http)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = status >= 400 ? "application/problem+json" : "application/json";
        if (location is not null)
        {
            http.Response.Headers.Location = location;
        }

        if (replayed)
        {
            http.Response.Headers["Idempotent-Replayed"] = "true";
        }

        await http.Response.WriteAsync(body);
    }
}
