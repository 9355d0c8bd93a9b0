using System.Collections.Concurrent;

namespace MetaCompute.Api.Idempotency;

/// <summary>
/// The tenants' idempotency keys this process has decided lately. The pool decider looks up, before deciding, only the
/// keys it finds here (a retry, a replay); any other key is most likely new, so it is decided unchecked and verified with
/// the batch's writes, where a key that was not new after all costs the batch a retry. Remembers at least the last
/// <see cref="Generation"/> keys and at most twice as many: a key older than that is treated as new, which is only slower.
/// A key is kept as a hash, not its text (a key may be 255 characters): two keys that share a hash only cost a look-up.
/// </summary>
public sealed class RecentKeys
{
    public const int Generation = 100_000;

    private readonly Lock _rotation = new();
    private ConcurrentDictionary<int, byte> _current = new();
    private ConcurrentDictionary<int, byte> _previous = new();
    private int _count;

    public bool Contains(Guid tenantId, string key)
    {
        var hash = HashCode.Combine(tenantId, key);
        return _current.ContainsKey(hash) || _previous.ContainsKey(hash);
    }

    public void Add(Guid tenantId, string key)
    {
        if (_current.TryAdd(HashCode.Combine(tenantId, key), 0) && Interlocked.Increment(ref _count) >= Generation)
        {
            lock (_rotation)
            {
                if (_count >= Generation)
                {
                    _previous = _current;
                    _current = new ConcurrentDictionary<int, byte>();
                    _count = 0;
                }
            }
        }
    }
}
