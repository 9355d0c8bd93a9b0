using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using JsonOptions = Microsoft.AspNetCore.Http.Json.JsonOptions;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;

namespace MetaCompute.Api.Idempotency;

/// <summary>What a mutating use case answered: stored with the key, and replayed for the same key and body.</summary>
public sealed record Outcome(int Status, object Body, string? Location = null)
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
/// running is 409; a missing key is 400. The key row is written in the same transaction as the effect, so a 2xx means
/// both committed. Serialization failures and deadlocks are retried; exclusion violations too, once the pool's index has
/// caught up, and then surface as 409.
/// </summary>
public sealed class IdempotentRequest(MetaComputeDbContext db, TimeProvider time, IOptions<JsonOptions> json, ILogger<IdempotentRequest> logger)
{
    public const string HeaderName = "Idempotency-Key";
    public const string KeyReusedType = Problems.BaseUri + "idempotency-key-reused";
    public const string KeyInFlightType = Problems.BaseUri + "idempotency-key-in-flight";
    public const string KeyMissingType = Problems.BaseUri + "idempotency-key-missing";
    private const int MaxAttempts = 3;

    public async Task<IResult> RunAsync(HttpContext http, Guid tenantId, object? request, Func<DateTimeOffset, CancellationToken, Task<Outcome>> effect)
    {
        var ct = http.RequestAborted;
        string? key = http.Request.Headers[HeaderName];
        if (string.IsNullOrWhiteSpace(key) || key.Length > 255)
        {
            return TypedResults.Problem(
                title: "Idempotency-Key required",
                detail: "Send an Idempotency-Key header (1–255 characters, e.g. a UUID) with every create, cancel and extend.",
                statusCode: StatusCodes.Status400BadRequest, type: KeyMissingType,
                extensions: new Dictionary<string, object?> { ["errors"] = new Dictionary<string, string[]> { [HeaderName] = ["Required."] } });
        }

        var hash = RequestHash(http, request);
        for (var attempt = 1; ; attempt++)
        {
            db.ChangeTracker.Clear();
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            try
            {
                var lockKey = BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes($"{tenantId}:{key}")));
                var acquired = await db.Database.SqlQuery<bool>($"SELECT pg_try_advisory_xact_lock({lockKey}) AS \"Value\"").SingleAsync(ct);
                if (!acquired)
                {
                    http.Response.Headers.RetryAfter = "1";
                    return TypedResults.Problem(title: "Request in flight",
                        detail: "A request with this Idempotency-Key is still being processed; retry shortly to get its answer.",
                        statusCode: StatusCodes.Status409Conflict, type: KeyInFlightType);
                }

                var stored = await db.IdempotencyKeys.AsNoTracking().FirstOrDefaultAsync(k => k.TenantId == tenantId && k.Key == key, ct);
                if (stored is not null)
                {
                    await tx.RollbackAsync(ct);
                    return stored.RequestHash.AsSpan().SequenceEqual(hash)
                        ? new ReplayResult(stored.ResponseStatus, stored.ResponseBody, stored.Location)
                        : TypedResults.Problem(title: "Idempotency-Key reused",
                            detail: "This Idempotency-Key was used with a different request; use a new key for a new request.",
                            statusCode: StatusCodes.Status422UnprocessableEntity, type: KeyReusedType);
                }

                var now = time.GetUtcNow();
                var outcome = await effect(now, ct);
                var body = JsonSerializer.Serialize(outcome.Body, outcome.Body.GetType(), json.Value.SerializerOptions);
                db.IdempotencyKeys.Add(new IdempotencyRecord
                {
                    TenantId = tenantId,
                    Key = key,
                    RequestHash = hash,
                    ResponseStatus = outcome.Status,
                    ResponseBody = body,
                    Location = outcome.Location,
                    CreatedAt = now,
                });
                await db.SaveChangesAsync(ct);
                await tx.CommitAsync(ct);
                return new ReplayResult(outcome.Status, body, outcome.Location, replayed: false);
            }
            catch (Exception e) when (attempt < MaxAttempts && IsRetryable(e))
            {
                logger.LogInformation("Retrying after {SqlState} (attempt {Attempt})", (e.InnerException as PostgresException ?? e as PostgresException)?.SqlState, attempt);
                await tx.RollbackAsync(CancellationToken.None);
            }
        }
    }

    private static bool IsRetryable(Exception e)
    {
        var pg = e as PostgresException ?? e.InnerException as PostgresException;
        return pg?.SqlState is PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.ExclusionViolation;
    }

    /// <summary>The method, the path and the body as the API parsed it, so formatting differences do not count.</summary>
    private byte[] RequestHash(HttpContext http, object? request)
    {
        var body = request is null ? "" : JsonSerializer.Serialize(request, request.GetType(), json.Value.SerializerOptions);
        return SHA256.HashData(Encoding.UTF8.GetBytes($"{http.Request.Method} {http.Request.Path}\n{body}"));
    }

    /// <summary>Writes a stored answer as it was first given; a replay says so in <c>Idempotent-Replayed</c>.</summary>
    private sealed class ReplayResult(int status, string body, string? location, bool replayed = true) : IResult
    {
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
}
