using System.Collections.Concurrent;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace MetaCompute.Api.Auth;

/// <summary>
/// Makes guessing keys expensive: failed authentications spend a token bucket per client address, and an address whose
/// bucket is empty is answered 429 for keys it has not proven, before any database look-up. Keys found to be unknown
/// are remembered for <see cref="AuthOptions.UnknownKeyMemory"/>, so repeating one costs no look-up either (keys are
/// made by the service, so a key unknown now cannot become valid later).
/// </summary>
public sealed class FailedAuthentications : IDisposable
{
    /// <summary>Bounds the memory of unknown keys; past it the oldest half of the entries go.</summary>
    public const int MaxRememberedUnknownKeys = 10_000;

    private readonly TimeProvider _time;
    private readonly AuthOptions _options;
    private readonly PartitionedRateLimiter<string> _failures;
    private readonly ConcurrentDictionary<string, DateTimeOffset> _unknown = new();

    public FailedAuthentications(TimeProvider time, IOptions<AuthOptions> options)
    {
        _time = time;
        _options = options.Value;
        _failures = PartitionedRateLimiter.Create<string, string>(address => RateLimitPartition.GetTokenBucketLimiter(address, _ =>
            new TokenBucketRateLimiterOptions
            {
                TokenLimit = _options.FailedAuthenticationBurst,
                TokensPerPeriod = _options.FailedAuthenticationsPerMinute,
                ReplenishmentPeriod = TimeSpan.FromMinutes(1),
                QueueLimit = 0,
                AutoReplenishment = true,
            }));
    }

    /// <summary>Whether the address has spent its failures; a key it presents is then not looked up.</summary>
    public bool IsThrottled(string address) => _failures.GetStatistics(address)?.CurrentAvailablePermits <= 0;

    /// <summary>Counts a failure against the address; false when that failure was over its limit.</summary>
    public bool Record(string address)
    {
        using var lease = _failures.AttemptAcquire(address);
        return lease.IsAcquired;
    }

    /// <summary>How long until the address may try again: one token's refill.</summary>
    public TimeSpan RetryAfter => TimeSpan.FromMinutes(1.0 / Math.Max(1, _options.FailedAuthenticationsPerMinute));

    public bool IsKnownUnknown(string hash) => _unknown.TryGetValue(hash, out var until) && until > _time.GetUtcNow();

    public void RememberUnknown(string hash)
    {
        if (_options.UnknownKeyMemory <= TimeSpan.Zero)
        {
            return;
        }

        if (_unknown.Count >= MaxRememberedUnknownKeys)
        {
            foreach (var (old, _) in _unknown.OrderBy(e => e.Value).Take(MaxRememberedUnknownKeys / 2))
            {
                _unknown.TryRemove(old, out _);
            }
        }

        _unknown[hash] = _time.GetUtcNow() + _options.UnknownKeyMemory;
    }

    public void Dispose() => _failures.Dispose();
}
