using System.Net.Sockets;
using MetaCompute.Api.Data;
using MetaCompute.Api.Idempotency;
using Npgsql;
using Polly;
using Polly.Registry;
using Polly.Retry;

namespace MetaCompute.Api.Infrastructure;

/// <summary>
/// Database faults that pass by themselves: a connection lost or refused, a server shutting down, crashing or starting
/// up, a standby that cannot take writes (a failover under way), too many connections, a serialization failure or a
/// deadlock. Requests that meet one are run again where that is safe (<see cref="TransientRetryFilter"/>); what still
/// fails is answered 503 with Retry-After by the exception handler, never 500.
/// </summary>
public static class TransientFaults
{
    public const string PipelineName = "database-transient";
    public const int RetryAfterSeconds = 1;
    public const int MaxRetries = 3;

    public static bool IsTransient(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case PostgresException pg:
                    return IsTransientState(pg.SqlState);
                case NpgsqlException { IsTransient: true }:
                case NpgsqlException { InnerException: IOException or SocketException or EndOfStreamException }:
                    return true;
            }
        }

        return false;
    }

    private static bool IsTransientState(string state) => state.StartsWith("08", StringComparison.Ordinal) // connection exceptions
        || state is PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected
            or PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow
            or PostgresErrorCodes.TooManyConnections or PostgresErrorCodes.ReadOnlySqlTransaction;

    /// <summary>
    /// A few retries with jittered exponential backoff from 100 ms (about 0.1, 0.2 and 0.4 s): long enough to ride out a
    /// killed backend or a pool of dead connections, short enough that a client waiting on a restart hears 503 within a
    /// second or so and retries on its own schedule.
    /// </summary>
    public static IServiceCollection AddTransientFaultRetries(this IServiceCollection services)
    {
        services.AddResiliencePipeline(PipelineName, pipeline => pipeline.AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<Exception>(IsTransient),
            MaxRetryAttempts = MaxRetries,
            Delay = TimeSpan.FromMilliseconds(100),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
        }));
        return services;
    }
}

/// <summary>
/// Runs a request again when it failed on a transient database fault and running it again is safe: reads, and writes
/// under an Idempotency-Key, whose key row commits with the effect, so another run either replays the first one's
/// answer or does what the first did not commit, never both.
/// </summary>
public sealed class TransientRetryFilter(ResiliencePipelineProvider<string> pipelines) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var request = context.HttpContext.Request;
        if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method) && !request.Headers.ContainsKey(IdempotentRequest.HeaderName))
        {
            return await next(context);
        }

        var attempt = 0;
        return await pipelines.GetPipeline(TransientFaults.PipelineName).ExecuteAsync(async _ =>
        {
            if (attempt++ > 0)
            {
                // The request's unit of work may hold what the failed attempt added; the next attempt starts clean.
                context.HttpContext.RequestServices.GetRequiredService<MetaComputeDbContext>().ChangeTracker.Clear();
            }

            return await next(context);
        }, context.HttpContext.RequestAborted);
    }
}
