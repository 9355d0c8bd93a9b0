using System.Collections.Concurrent;

namespace MetaCompute.Api.Idempotency;

/// <summary>
/// The tenants' idempotency keys this process has decided lately. The pool decider looks up, before deciding, only the
/// keys it finds here (a retry, a replay); any other key is most likely new, so it is decided unchecked and verified with
/// the batch's writes, where a key that was not new after all costs the batch a retry. Remembers at least the last
/// <see cref="Generation"/> keys and at most twice as many: a key older than that is treated as new, which is only slower.
/// </summary>
public sealed class RecentKeys
{
    public const int Generation = 100_000;

    private readonly Lock _rotation = new();
    private ConcurrentDictionary<(Guid, string), byte> _current = new();
    private ConcurrentDictionary<(Guid, string), byte> _previous = new();
    private int _count;

    public bool Contains(Guid tenantId, string key) => _current.ContainsKey((tenantId, key)) || _previous.ContainsKey((tenantId, key));

    public void Add(Guid tenantId, string key)
    {
        if (_current.TryAdd((tenantId, key), 0) && Interlocked.Increment(ref _count) >= Generation)
        {
            lock (_rotation)
            {
                if (_count >= Generation)
                {
                    _previous = _current;
                    _current = new ConcurrentDictionary<(Guid, string), byte>();
                    _count = 0;
                }
            }
        }
    }
}
