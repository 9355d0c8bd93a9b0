using MetaCompute.Api.Data;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Reservations;

/// <summary>Maps reservations to answers, reading their leases' GPUs (host, island, rack, indices) in one query.</summary>
public static class ReservationViews
{
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
                where leaseIds.Contains(a.LeaseId)
                select new { a.LeaseId, NodeId = n.Id, n.Hostname, Island = i.Name, Rack = rk.Name, Index = (int)g.Index })
            .ToListAsync(ct);
        var byLease = gpus.GroupBy(g => g.LeaseId).ToDictionary(
            g => g.Key,
            g => g.GroupBy(x => (x.NodeId, x.Hostname, x.Island, x.Rack))
                .OrderBy(n => n.Key.NodeId)
                .Select(n => new LeaseNodeResponse(n.Key.NodeId.ToString(), n.Key.Hostname, n.Key.Island, n.Key.Rack, n.Select(x => x.Index).Order().ToList()))
                .ToList());

        return reservations.Select(r => new ReservationResponse(
            r.Id.ToString(),
            r.Status,
            r.PoolId,
            r.Tier,
            r.GpuCount,
            r.StartAt,
            r.EndAt,
            new PriceResponse(r.PricePerGpuHour, r.TotalPrice, r.Currency),
            r.Lease is { } lease && byLease.TryGetValue(lease.Id, out var nodes)
                ? new LeaseResponse(lease.Id.ToString(), lease.StartAt, lease.EndAt, nodes)
                : null,
            r.SingleFabricIsland,
            r.CreatedAt,
            r.CancelledAt)).ToList();
    }
}
