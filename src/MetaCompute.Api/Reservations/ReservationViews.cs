using MetaCompute.Api.Data;
using MetaCompute.Api.Scheduling;
using MetaCompute.Scheduling;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Reservations;

/// <summary>Maps reservations to answers, reading their leases' GPUs (host, island, rack, indices) in one query.</summary>
public static class ReservationViews
{
    /// <summary>The answer to a change, built from the hold just written rather than read back from the database.</summary>
    public static async Task<ReservationResponse> FromHoldAsync(MetaComputeDbContext db, NodeDirectory nodes, Reservation reservation, LeaseHold? hold,
        CancellationToken ct)
    {
        LeaseResponse? lease = null;
        if (hold is not null && reservation.Lease is { } l)
        {
            var leaseNodes = new List<LeaseNodeResponse>();
            foreach (var gpus in hold.Gpus.OrderBy(g => g.NodeId))
            {
                var place = await nodes.GetAsync(db, gpus.NodeId, ct);
                leaseNodes.Add(new LeaseNodeResponse(gpus.NodeId.ToString(), place.Hostname, place.FabricIsland, place.Rack, gpus.Indices().ToList()));
            }

            lease = new LeaseResponse(l.Id.ToString(), l.StartAt, l.EndAt, leaseNodes);
        }

        return Map(reservation, lease);
    }

    public static async Task<ReservationResponse> ToResponseAsync(MetaComputeDbContext db, Reservation reservation, CancellationToken ct) =>
        (await ToResponsesAsync(db, [reservation], ct))[0];

    public static async Task<List<ReservationResponse>> ToResponsesAsync(MetaComputeDbContext db, IReadOnlyList<Reservation> reservations,
        CancellationToken ct)
    {
        var leaseIds = reservations.Where(r => r.Lease is not null).Select(r => r.Lease!.Id).ToList();
        var gpus = await (
                from a in db.Allocations.AsNoTracking()
                join g in db.Gpus on a.GpuId equals g.Id
                join n in db.Nodes on a.NodeId equals n.Id
                join rk in db.Racks on n.RackId equals rk.Id
                join i in db.FabricIslands on n.IslandId equals i.Id
                join l in db.Leases on a.LeaseId equals l.Id
                // Rows that end before their lease were left behind by a move off a failed node: not the lease's GPUs now.
                where leaseIds.Contains(a.LeaseId) && a.Period.UpperBound >= l.EndAt.UtcDateTime
                select new { a.LeaseId, NodeId = n.Id, n.Hostname, Island = i.Name, Rack = rk.Name, Index = (int)g.Index })
            .ToListAsync(ct);
        var byLease = gpus.GroupBy(g => g.LeaseId).ToDictionary(
            g => g.Key,
            g => g.GroupBy(x => (x.NodeId, x.Hostname, x.Island, x.Rack))
                .OrderBy(n => n.Key.NodeId)
                .Select(n => new LeaseNodeResponse(n.Key.NodeId.ToString(), n.Key.Hostname, n.Key.Island, n.Key.Rack, n.Select(x => x.Index).Order().ToList()))
                .ToList());

        return reservations.Select(r => Map(r, r.Lease is { } lease && byLease.TryGetValue(lease.Id, out var nodes)
            ? new LeaseResponse(lease.Id.ToString(), lease.StartAt, lease.EndAt, nodes)
            : null)).ToList();
    }

    private static ReservationResponse Map(Reservation r, LeaseResponse? lease) => new(
        r.Id.ToString(),
        r.Status,
        r.PoolId,
        r.Tier,
        r.GpuCount,
        r.StartAt,
        r.EndAt,
        new PriceResponse(r.PricePerGpuHour, r.TotalPrice, r.Currency),
        lease,
        r.SingleFabricIsland,
        r.CreatedAt,
        r.CancelledAt,
        r.Status == ReservationStatus.Pending ? r.WaitUntil : null,
        r.RecallAt);
}
