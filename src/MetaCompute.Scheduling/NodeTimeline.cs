namespace MetaCompute.Scheduling;

/// <summary>
/// The busy periods of one node's GPUs, kept sorted by start in parallel arrays. A window query binary-searches the
/// holds that start before the window ends and walks back only while an earlier hold could still reach the window: no
/// further than the longest hold's length, and no further once every earlier hold has ended by the window's start.
/// Its cost follows the holds near the window, not every hold the node carries (under a booking-and-cancelling load,
/// thousands that ended within the last minute).
/// </summary>
internal sealed class NodeTimeline
{
    private long[] _starts = new long[4];
    private long[] _ends = new long[4];
    private byte[] _masks = new byte[4];
    private Guid[] _leases = new Guid[4];
    // _latestEnd[i] is the latest end among holds 0..i: the walk back stops where it falls to the window's start.
    private long[] _latestEnd = new long[4];
    private long _longest;

    public int Count { get; private set; }

    public void Add(long start, long end, byte mask, Guid lease)
    {
        if (Count == _starts.Length)
        {
            Array.Resize(ref _starts, Count * 2);
            Array.Resize(ref _ends, Count * 2);
            Array.Resize(ref _masks, Count * 2);
            Array.Resize(ref _leases, Count * 2);
            Array.Resize(ref _latestEnd, Count * 2);
        }

        var at = FirstStartingAtOrAfter(start + 1);
        var tail = Count - at;
        Array.Copy(_starts, at, _starts, at + 1, tail);
        Array.Copy(_ends, at, _ends, at + 1, tail);
        Array.Copy(_masks, at, _masks, at + 1, tail);
        Array.Copy(_leases, at, _leases, at + 1, tail);
        _starts[at] = start;
        _ends[at] = end;
        _masks[at] = mask;
        _leases[at] = lease;
        _longest = Math.Max(_longest, end - start);
        Count++;
        RecomputeLatestEnds(at);
    }

    /// <summary>
    /// Removes <paramref name="lease"/>'s hold, which starts at <paramref name="start"/>. Only the holds starting then
    /// are compared, so a cancellation costs a search and one shift, not a pass over every hold the node remembers
    /// (under heavy churn a node keeps thousands that ended within the last minute).
    /// </summary>
    public void Remove(Guid lease, long start)
    {
        var at = FirstStartingAtOrAfter(start);
        while (at < Count && _starts[at] == start && _leases[at] != lease)
        {
            at++;
        }

        if (at == Count || _starts[at] != start)
        {
            return;
        }

        var tail = Count - at - 1;
        Array.Copy(_starts, at + 1, _starts, at, tail);
        Array.Copy(_ends, at + 1, _ends, at, tail);
        Array.Copy(_masks, at + 1, _masks, at, tail);
        Array.Copy(_leases, at + 1, _leases, at, tail);
        Count--;
        RecomputeLatestEnds(at);
    }

    /// <summary>Removes the holds of <paramref name="leases"/> in one pass (forgetting ended holds a batch at a time).</summary>
    public void RemoveAll(IReadOnlySet<Guid> leases)
    {
        var kept = 0;
        var firstChanged = -1;
        for (var i = 0; i < Count; i++)
        {
            if (leases.Contains(_leases[i]))
            {
                firstChanged = firstChanged < 0 ? i : firstChanged;
                continue;
            }

            _starts[kept] = _starts[i];
            _ends[kept] = _ends[i];
            _masks[kept] = _masks[i];
            _leases[kept] = _leases[i];
            kept++;
        }

        Count = kept;
        if (firstChanged >= 0)
        {
            RecomputeLatestEnds(firstChanged);
        }
    }

    /// <summary>The union of the masks of holds overlapping <c>[start, end)</c>, other than <paramref name="ignoring"/>'s.</summary>
    public int BusyMask(long start, long end, Guid? ignoring)
    {
        var busy = 0;
        // Holds starting at or after the window's end cannot overlap it; earlier ones can only reach back _longest.
        var reach = start - _longest;
        for (var i = FirstStartingAtOrAfter(end) - 1; i >= 0 && _starts[i] >= reach && _latestEnd[i] > start; i--)
        {
            if (_ends[i] > start && _leases[i] != ignoring)
            {
                busy |= _masks[i];
                if (busy == PoolOccupancy.FullNode)
                {
                    break;
                }
            }
        }

        return busy;
    }

    /// <summary>Earliest start at or after <paramref name="from"/> of another hold on any of <paramref name="mask"/>'s GPUs.</summary>
    public long NextBusyStart(byte mask, long from, Guid ignoring)
    {
        var next = long.MaxValue;
        for (var i = 0; i < Count; i++)
        {
            if (_leases[i] != ignoring && (_masks[i] & mask) != 0 && _ends[i] > from)
            {
                next = Math.Min(next, Math.Max(_starts[i], from));
            }
        }

        return next;
    }

    public IEnumerable<Guid> Leases()
    {
        for (var i = 0; i < Count; i++)
        {
            yield return _leases[i];
        }
    }

    public IEnumerable<long> Ends()
    {
        for (var i = 0; i < Count; i++)
        {
            yield return _ends[i];
        }
    }

    private void RecomputeLatestEnds(int from)
    {
        var latest = from > 0 ? _latestEnd[from - 1] : long.MinValue;
        for (var i = from; i < Count; i++)
        {
            latest = Math.Max(latest, _ends[i]);
            _latestEnd[i] = latest;
        }
    }

    private int FirstStartingAtOrAfter(long t)
    {
        int lo = 0, hi = Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_starts[mid] < t)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }
}
