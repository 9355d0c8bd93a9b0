using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace MetaCompute.Api.Infrastructure;

/// <summary>
/// The one place that maps unexpected exceptions to problem answers: bad requests the framework threw keep their
/// status; constraint violations and concurrency conflicts are 409 (412 when If-Match was sent); serialization
/// failures, deadlocks and other transient database faults (<see cref="TransientFaults"/>) that survived their retries are
/// 503 with Retry-After; anything else is 500 without internals.
/// </summary>
public sealed class ProblemExceptionHandler(IProblemDetailsService problems, ILogger<ProblemExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken ct)
    {
        var problem = Map(context, exception);
        if (problem.Status >= 500)
        {
            logger.LogError(exception, "Unhandled exception answered {Status}", problem.Status);
        }

        context.Response.StatusCode = problem.Status!.Value;
        if (problem.Status == StatusCodes.Status503ServiceUnavailable)
        {
            context.Response.Headers.RetryAfter = TransientFaults.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = context, ProblemDetails = problem, Exception = exception });
    }

    private static ProblemDetails Map(HttpContext context, Exception exception) => exception switch
    {
        BadHttpRequestException { InnerException: JsonException json } when MissingFields(json) is { Length: > 0 } missing => new ValidationProblemDetails(
            missing.ToDictionary(field => field, field => new[] { $"{field} is required." }))
        {
            Status = StatusCodes.Status400BadRequest,
            Type = Problems.ValidationFailedType,
            Title = "The request is not valid.",
        },
        BadHttpRequestException bad => new ProblemDetails
        {
            Status = bad.StatusCode,
            Type = Problems.TypeFor(bad.StatusCode),
            Title = BadRequestTitle(bad.StatusCode),
            Detail = BadRequestDetail(bad),
        },
        DbUpdateConcurrencyException when context.Request.Headers.IfMatch.Count > 0 => new ProblemDetails
        {
            Status = StatusCodes.Status412PreconditionFailed,
            Type = Problems.PreconditionFailedType,
            Title = "The resource has changed",
            Detail = "The If-Match ETag no longer matches; read the resource again and retry.",
        },
        DbUpdateConcurrencyException => Conflict("The resource was changed by another request; read it again and retry."),
        _ when FindPostgres(exception) is { } pg && pg.SqlState is PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected
            => new ProblemDetails
            {
                Status = StatusCodes.Status503ServiceUnavailable,
                Type = Problems.TemporarilyUnavailableType,
                Title = "Too much contention",
                Detail = "The request conflicted with concurrent requests and was not applied; retry it.",
            },
        _ when TransientFaults.IsTransient(exception) => new ProblemDetails
        {
            Status = StatusCodes.Status503ServiceUnavailable,
            Type = Problems.TemporarilyUnavailableType,
            Title = "Database unavailable",
            Detail = "The database could not be reached or is restarting; retry the request (with the same Idempotency-Key for a change).",
        },
        _ when FindPostgres(exception) is { } pg && pg.SqlState is PostgresErrorCodes.ExclusionViolation or PostgresErrorCodes.UniqueViolation
                or PostgresErrorCodes.CheckViolation or PostgresErrorCodes.ForeignKeyViolation
            => Conflict("The request conflicts with the current state and was not applied."),
        _ => new ProblemDetails
        {
            Status = StatusCodes.Status500InternalServerError,
            Type = Problems.InternalErrorType,
            Title = "Internal error",
            Detail = "Something went wrong on our side; the trace id identifies it.",
        },
    };

    private static ProblemDetails Conflict(string detail) => new()
    {
        Status = StatusCodes.Status409Conflict,
        Type = Problems.ConflictType,
        Title = "Conflict",
        Detail = detail,
    };

    private static PostgresException? FindPostgres(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is PostgresException pg)
            {
                return pg;
            }
        }

        return null;
    }

    private static string BadRequestTitle(int status) => status switch
    {
        StatusCodes.Status413PayloadTooLarge => "Request body too large",
        StatusCodes.Status414UriTooLong => "URL too long",
        StatusCodes.Status415UnsupportedMediaType => "Unsupported media type",
        _ => "Malformed request",
    };

    /// <summary>
    /// The fields a body left out that its record requires (<see cref="JsonSerializerOptions.RespectRequiredConstructorParameters"/>):
    /// System.Text.Json names them, quoted, in its message and nowhere else. Nested ones are prefixed with the object's path.
    /// </summary>
    private static string[] MissingFields(JsonException json)
    {
        const string marker = "missing required properties including:";
        var at = json.Message.IndexOf(marker, StringComparison.Ordinal);
        if (at < 0)
        {
            return [];
        }

        var prefix = json.Path is { Length: > 1 } path && path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] + "." : "";
        return json.Message[(at + marker.Length)..].Split(',')
            .Select(name => name.Trim().TrimEnd('.').Trim('\''))
            .Where(name => name.Length > 0)
            .Select(name => prefix + name)
            .ToArray();
    }

    /// <summary>Says where a JSON body broke (path, line, byte) without echoing the body.</summary>
    private static string BadRequestDetail(BadHttpRequestException bad)
    {
        if (bad.InnerException is JsonException json)
        {
            var where = json.Path is { Length: > 0 } path ? $" at '{path}'" : "";
            var line = json.LineNumber is { } l ? $" (line {l + 1}, byte {json.BytePositionInLine + 1})" : "";
            return $"The request body is not valid JSON{where}{line}.";
        }

        return bad.StatusCode switch
        {
            StatusCodes.Status415UnsupportedMediaType => "Send the body as application/json.",
            StatusCodes.Status413PayloadTooLarge => "The request body exceeds the size this API accepts.",
            _ => bad.Message,
        };
    }
}
